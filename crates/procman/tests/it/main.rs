//! procman's integration tests: one binary, a module per topic. Every test
//! drives real processes (the `procman-testchild` binary) and waits on
//! events with generous deadlines.

mod cli;
mod environment;
mod fallback;
mod files;
mod health;
mod logs;
mod pid1;
mod restart;
mod spawn;
mod stop;
mod support;
