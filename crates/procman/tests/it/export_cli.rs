//! `procman export` as a command, whatever the format: a warning about
//! each of many processes is shown twice and then counted, and files an
//! earlier export left in `-o DIR` are named.

use std::path::{Path, PathBuf};

use procman_core::outcome::ProcessEnd;

use crate::support::*;

/// `n` processes, each with an HTTP check (which no format carries whole).
fn many(t: &Scratch, n: usize) -> String {
    let mut yaml = String::from("process_manager: {port: 0}\nmanaged_processes:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - id: p{i}\n    export: {{image: 'x:1'}}\n    management:\n      control: {{executable: /bin/sleep, arguments: ['100']}}\n      health_check: {{http_endpoint: 'http://127.0.0.1:{}/h'}}\n",
            8000 + i
        ));
    }
    let file = t.path("many.yaml");
    std::fs::write(&file, yaml).expect("write the config");
    file.display().to_string()
}

#[tokio::test]
async fn a_warning_about_each_of_many_processes_is_counted() {
    let t = Scratch::new();
    let config = many(&t, 300);
    for format in ["systemd", "kubernetes", "nomad"] {
        let (end, out, err) = run_split(
            Path::new(procman()),
            &["export", "--format", format, "-c", &config],
        )
        .await;
        assert_eq!(end, ProcessEnd::Exited(0), "{format}: {err}");
        assert!(!out.is_empty(), "{format}");
        let warnings = err.lines().filter(|l| l.contains(": warning: ")).count();
        assert!(
            warnings < 40,
            "{format}: {warnings} warning lines for 300 alike processes:\n{err}"
        );
        assert!(
            err.contains("more like it, the last at managed_processes[299]"),
            "{format}:\n{err}"
        );
    }
}

#[tokio::test]
async fn files_an_earlier_export_left_in_the_directory_are_named() {
    let t = Scratch::new();
    let dir = t.path("out");
    let dir_s = dir.display().to_string();
    let export = |config: String| {
        let dir_s = dir_s.clone();
        async move {
            let args = [
                "export",
                "--format",
                "kubernetes",
                "-c",
                &config,
                "-o",
                &dir_s,
            ];
            run_split(Path::new(procman()), &args).await
        }
    };
    let (end, _, err) = export(many(&t, 3)).await;
    assert_eq!(end, ProcessEnd::Exited(0), "{err}");
    assert!(!err.contains("not written by this export"), "{err}");
    let (end, _, err) = export(many(&t, 2)).await;
    assert_eq!(end, ProcessEnd::Exited(0), "{err}");
    let named: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("was not written by this export"))
        .collect();
    assert_eq!(named.len(), 1, "{err}");
    assert!(named[0].contains("p2"), "{err}");
}

/// A config of `procman export`'s golden files: `spec-example` (the
/// seed's example) or one under `crates/procman/tests/export/`.
pub fn export_fixture(name: &str) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    match name {
        "spec-example" => crate_dir.join("../../examples/hsu-spec-example.yaml"),
        other => crate_dir.join(format!("tests/export/{other}.yaml")),
    }
}
