//! procman's integration tests: one binary, a module per topic. Every test
//! drives real processes (the `procman-testchild` binary) and waits on
//! events with generous deadlines.

mod api;
mod cli;
mod cli_control;
mod credentials;
mod depends;
mod dispositions;
mod ending;
mod environment;
mod export_cli;
mod export_kubernetes;
mod export_nomad;
mod export_systemd;
mod fallback;
mod files;
mod hardening;
mod health;
mod limits;
mod logs;
mod manager;
mod pid1;
mod reasons;
mod reattach;
mod reload;
mod restart;
mod spawn;
mod stop;
mod support;
mod tui;
mod unmanaged;
mod users;
mod validate_limits;
mod watch;
