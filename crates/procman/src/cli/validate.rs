//! `procman validate -c FILE`: every error at once, or a one-line summary.

use super::ConfigArg;
use crate::exit::Failure;

pub fn validate(args: ConfigArg) -> Result<(), Failure> {
    let config = super::load(&args.config)?;
    let total = config.processes.len();
    let enabled = config.processes.iter().filter(|p| p.enabled).count();
    println!(
        "{}: valid ({total} process{}, {enabled} enabled)",
        args.config.display(),
        if total == 1 { "" } else { "es" }
    );
    Ok(())
}
