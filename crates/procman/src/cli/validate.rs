//! `procman validate -c FILE`: every error at once, or a one-line summary
//! after the warnings (if any), which go to stderr like the errors.

use super::ConfigArg;
use crate::exit::Failure;

pub fn validate(args: ConfigArg) -> Result<(), Failure> {
    let config = super::load(&args.config)?;
    for warning in &config.warnings {
        eprintln!("{}", warning.display(&args.config));
    }
    let total = config.processes.len();
    let enabled = config.processes.iter().filter(|p| p.enabled).count();
    let warnings = match config.warnings.len() {
        0 => "no warnings".to_string(),
        1 => "1 warning".to_string(),
        n => format!("{n} warnings"),
    };
    println!(
        "{}: valid ({total} process{}, {enabled} enabled, {warnings})",
        args.config.display(),
        if total == 1 { "" } else { "es" }
    );
    Ok(())
}
