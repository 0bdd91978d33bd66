//! Golden files of `procman export`: each format rendered from the
//! fixtures under `crates/procman/tests/export/` and compared with the
//! files stored beside them. `UPDATE_GOLDEN=1 cargo test -p procman
//! export` writes them again (then read the diff before committing).

use std::path::{Path, PathBuf};

use procman_core::config::Config;

/// The directory of the fixtures and golden files.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export")
}

/// A fixture loaded as `procman export` loads it: `every-key` (in the
/// directory above) or `spec-example` (the seed's example, in
/// `examples/`).
pub fn fixture(name: &str) -> Config {
    let path = match name {
        "spec-example" => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hsu-spec-example.yaml")
        }
        other => dir().join(format!("{other}.yaml")),
    };
    match procman_core::config::load_file(&path) {
        Ok(config) => config,
        Err(e) => panic!("fixture {name} must load:\n{e}"),
    }
}

/// Asserts that `actual` is the golden file `relative` (under [`dir`]),
/// or writes it when `UPDATE_GOLDEN` is set.
pub fn check(relative: &str, actual: &str) {
    let path = dir().join(relative);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the golden file's directory");
        }
        std::fs::write(&path, actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); UPDATE_GOLDEN=1 writes it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || expected.lines().count().min(actual.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{} differs from the output, first at line {line}; UPDATE_GOLDEN=1 writes it again.\n--- output ---\n{actual}",
            path.display()
        );
    }
}
