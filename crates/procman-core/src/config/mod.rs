//! Configuration: the HSU YAML format, loaded, expanded and validated.
//!
//! [`load_file`] reads a file and returns either a complete [`Config`] or
//! **every** problem found, each located as `FILE:LINE:COL: key.path: message`.
//! Nothing downstream ever sees a half-valid config.
//!
//! How it works: the YAML is parsed into a tree that keeps the position of
//! every node (`node`), then walked by hand (`load`, `process`,
//! `management`) with the key path of each value at hand, so that a wrong
//! value, an unknown key or a missing one is reported and the walk goes on
//! (serde would stop at the first). String values are `${VAR}`-expanded
//! (`expand`) before they are parsed by type (`scalar`). Checks across
//! processes (unique ids, the `depends_on` graph) run last (`validate`).
//! The file format is documented in `docs/configuration.md`.

mod decode;
mod error;
mod expand;
mod load;
mod management;
mod node;
mod process;
mod scalar;
pub mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{ConfigErrors, Diagnostic};
pub use load::{load_file, load_str};
pub use schema::*;
