//! procman's integration tests: one binary, a module per topic. Every test
//! drives real processes (the `procman-testchild` binary) and waits on
//! events with generous deadlines.

mod support;
mod restart;
mod stop;
