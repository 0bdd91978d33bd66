//! Tests of the config loader: the spec's example, each feature, each
//! kind of error with its exact position, key path and message, warnings,
//! and hostile input (bytes, depth, size, length).

mod depth;
mod duplicates;
mod errors;
mod features;
mod limits;
mod log_files;
mod report;
mod resource_limits;
mod scalars;
mod spec_example;
mod text;
mod warnings;

use std::collections::HashMap;
use std::path::Path;

use super::{load_str, Config, ConfigErrors, Diagnostic};

/// Where the test configs pretend to live.
const SOURCE: &str = "/etc/procman/procman.yaml";

/// Strips the indentation the test source adds, and the first newline,
/// so line 1 of the YAML is the line after the opening quote.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn load_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|&(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_str(&dedent(text), Path::new(SOURCE), &|name| {
        env.get(name).cloned()
    })
}

/// Loads a config that must be valid.
fn load_ok(text: &str) -> Config {
    load_ok_with(text, &[])
}

fn load_ok_with(text: &str, vars: &[(&str, &str)]) -> Config {
    match load_with(text, vars) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// Loads a config that must be invalid; returns its problems in order.
fn load_err(text: &str) -> Vec<Diagnostic> {
    match load_with(text, &[]) {
        Ok(config) => panic!("expected errors, got a valid config: {config:#?}"),
        Err(e) => e.errors,
    }
}
