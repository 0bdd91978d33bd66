//! `procman export --format kubernetes`.

use procman_core::config::Config;

use super::{ExportError, Options, Rendered};

pub fn render(_config: &Config, _opts: &Options) -> Result<Rendered, ExportError> {
    Err(ExportError::Incomplete(
        "the kubernetes format is being written".to_string(),
    ))
}
