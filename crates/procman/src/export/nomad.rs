//! `procman export --format nomad`.

use procman_core::config::Config;

use super::{ExportError, Options, Rendered};

pub fn render(_config: &Config, _opts: &Options) -> Result<Rendered, ExportError> {
    Err(ExportError::Incomplete(
        "the nomad format is being written".to_string(),
    ))
}
