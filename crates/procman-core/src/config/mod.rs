//! Configuration: the HSU YAML format, loaded, expanded and validated.
//!
//! [`load_file`] reads a file and returns either a complete [`Config`] or
//! **every** problem found, each located as `FILE:LINE:COL: key.path: message`.
//! Nothing downstream ever sees a half-valid config.
//!
//! How it works: the YAML is parsed into a compact tree that keeps the
//! position of every node (`document`, `tree`), then walked by hand (`load`,
//! `process`, `management`, `limits`) with the key path of each value at
//! hand, so that a wrong value, an unknown key or a missing one is
//! reported and the walk goes on (serde would stop at the first). String
//! values are `${VAR}`-expanded (`expand`) before they are parsed by type
//! (`scalar`). Checks across processes (unique ids, the `depends_on`
//! graph, log files) run last (`validate`, `log_files`), then the warnings
//! (`warning`): settings that load but are likely mistakes, kept in
//! [`Config::warnings`].
//!
//! Hostile input is bounded before it can hurt: nesting (64 levels),
//! nested `${...}` defaults (16), the file's size (64 MiB), durations
//! (100 years), and the length of any text a message echoes (64
//! characters). The file format is documented in `docs/configuration.md`.

mod decode;
mod discovery;
mod document;
mod error;
mod expand;
mod limits;
mod load;
mod log_files;
mod management;
mod node;
mod process;
mod scalar;
pub mod schema;
mod text;
mod tree;
mod validate;
mod warning;

#[cfg(test)]
mod tests;

pub(crate) use error::cut;
pub use error::{collapse, warning_lines, ConfigErrors, Diagnostic, Severity, Shown};
pub use load::{load_file, load_file_elsewhere, load_str};
pub use schema::*;
