//! `procman export --format kubernetes` end to end: the binary on the
//! fixtures (`every-key`, the spec's example, and `kubernetes-strings`,
//! strings a YAML writer could get wrong), what it prints and writes;
//! its manifests checked by kubernetes-validate (PyPI) against the newest
//! Kubernetes version that package bundles, and read back with PyYAML
//! (`export_kubernetes.py` beside this file): every command, argument and
//! environment value reaches the container as the config has it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use procman_core::config::{Config, ProcessKind};
use procman_core::outcome::ProcessEnd;
use serde_json::{json, Value};

use crate::api::python_venv;
use crate::support::*;

/// The validator, pinned: a new release brings a new Kubernetes version,
/// taken on purpose. PyYAML comes with it.
const VALIDATOR: &str = "kubernetes-validate==1.37.0";

const FIXTURES: [&str; 3] = ["every-key", "spec-example", "kubernetes-strings"];

/// The image of every process without `export.image`.
const IMAGE: &str = "registry.example/shop:1.0";

fn fixture(name: &str) -> PathBuf {
    crate::export_cli::export_fixture(name)
}

/// What a run printed.
struct Output {
    end: ProcessEnd,
    stdout: String,
    stderr: String,
}

/// `procman export --format kubernetes -c CONFIG EXTRA...`.
async fn export(config: &Path, extra: &[&str]) -> Output {
    let config = config.display().to_string();
    let mut args = vec!["export", "--format", "kubernetes", "-c", config.as_str()];
    args.extend_from_slice(extra);
    capture(Path::new(procman()), &args).await
}

/// Runs `program`, its stdout and stderr apart.
async fn capture(program: &Path, args: &[&str]) -> Output {
    let (end, stdout, stderr) = run_split(program, args).await;
    Output {
        end,
        stdout,
        stderr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_writes_manifests_warnings_and_a_summary() {
    let config = fixture("every-key");
    let out = export(&config, &["--image", IMAGE]).await;
    let (stdout, stderr) = (out.stdout, out.stderr);
    assert_eq!(out.end, ProcessEnd::Exited(0), "{stderr}");
    assert!(
        stdout.starts_with("---\napiVersion: apps/v1\nkind: Deployment\n"),
        "{stdout}"
    );
    let file = config.display();
    assert!(
        stderr.contains(&format!(
            "{file}: managed_processes[0].management.control.env_file: warning: "
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!(
        "{file}: managed_processes[6]: warning: `cron` is unmanaged"
    )));
    let count = stderr.matches(": warning: ").count();
    assert!(
        stderr.ends_with(&format!(
            "procman export: 5 Deployments, a Job and 3 Services for kubernetes to stdout, {count} warnings\n"
        )),
        "{stderr}"
    );

    // With -o DIR: one file per process, the same text, and a README.
    let t = Scratch::new();
    let dir = t.path("manifests");
    let dir_arg = dir.display().to_string();
    let out = export(&config, &["--image", IMAGE, "-o", &dir_arg]).await;
    assert_eq!(out.end, ProcessEnd::Exited(0), "{}", out.stderr);
    assert!(out
        .stderr
        .contains(&format!("for kubernetes to {dir_arg}/, {count} warnings")));
    let files = ["db", "migrate", "api", "web", "reporter", "legacy"];
    let joined: String = files
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(format!("{f}.yaml"))).expect("a manifest"))
        .collect();
    assert_eq!(joined, stdout);
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
    assert!(readme.contains("kubectl wait --for=condition=complete --timeout=1h job/migrate"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), files.len() + 1, "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_without_an_image_stops_the_export_with_the_fix() {
    let t = Scratch::new();
    let dir = t.path("manifests");
    let out = export(&fixture("every-key"), &["-o", &dir.display().to_string()]).await;
    let stderr = out.stderr;
    assert_eq!(out.end, ProcessEnd::Exited(2), "{stderr}");
    assert!(
        stderr.contains(
            "no container image for `db`, `web`, `reporter`, `legacy`: give each an `export.image`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--image IMAGE"));
    assert!(out.stdout.is_empty());
    assert!(!dir.exists(), "nothing is written");
}

/// The virtualenv with the validator and PyYAML, and the newest
/// Kubernetes version the validator bundles.
async fn validator() -> Option<(PathBuf, String)> {
    let venv = python_venv("kubernetes-validate", &[VALIDATOR]).await?;
    let python = venv.join("bin/python");
    let (end, version) = run(
        &python,
        &[
            "-c",
            "import kubernetes_validate.utils as u; print(u.latest_version())",
        ],
        &[],
    )
    .await;
    assert_eq!(end, ProcessEnd::Exited(0), "{version}");
    Some((venv, version.trim().to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manifest_passes_kubernetes_validate_strictly() {
    tokio::time::timeout(WATCHDOG * 3, async {
        let Some((venv, version)) = validator().await else {
            return;
        };
        eprintln!("kubernetes-validate: Kubernetes {version}");
        let t = Scratch::new();
        for name in FIXTURES {
            let dir = t.path(name);
            let out = export(
                &fixture(name),
                &["--image", IMAGE, "-o", &dir.display().to_string()],
            )
            .await;
            assert_eq!(out.end, ProcessEnd::Exited(0), "{}", out.stderr);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .expect("read the directory")
                .map(|e| e.expect("an entry").path().display().to_string())
                .filter(|p| p.ends_with(".yaml"))
                .collect();
            files.sort();
            let documents: usize = files
                .iter()
                .map(|f| {
                    let text = std::fs::read_to_string(f).expect("a manifest");
                    text.lines().filter(|l| *l == "---").count()
                })
                .sum();
            let mut args = vec!["-k", version.as_str(), "--strict"];
            args.extend(files.iter().map(String::as_str));
            let (end, report) = run(&venv.join("bin/kubernetes-validate"), &args, &[]).await;
            assert_eq!(end, ProcessEnd::Exited(0), "{name}:\n{report}");
            let passed = report
                .lines()
                .filter(|l| l.contains(" passed for resource "))
                .count();
            assert_eq!(passed, documents, "{name}: each document passes:\n{report}");
            assert!(documents >= 2, "{name}: {report}");
        }
    })
    .await
    .expect("the test finished in time");
}

/// What each container must run, from the config as procman loads it:
/// `{id: {"command", "args", "env"}}` as the reader script prints it.
fn expected(config: &Config) -> Value {
    let mut all = serde_json::Map::new();
    for p in config
        .processes
        .iter()
        .filter(|p| p.kind != ProcessKind::Unmanaged)
    {
        let c = &p.control;
        let mut args = c.arguments.clone();
        let mut env: BTreeMap<String, String> = c.environment.iter().cloned().collect();
        if p.kind == ProcessKind::IntegratedManaged {
            let port = c.port.unwrap_or(50051).to_string();
            args.extend(["--port".to_string(), port.clone()]);
            env.insert("PROCMAN_PORT".to_string(), port);
        }
        all.insert(
            p.id.clone(),
            json!({"command": [c.executable], "args": args, "env": env}),
        );
    }
    Value::Object(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_arguments_and_environment_come_back_byte_for_byte() {
    tokio::time::timeout(WATCHDOG * 3, async {
        let Some((venv, _)) = validator().await else {
            return;
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/export_kubernetes.py");
        let t = Scratch::new();
        for name in FIXTURES {
            let config = fixture(name);
            let out = export(&config, &["--image", IMAGE]).await;
            assert_eq!(out.end, ProcessEnd::Exited(0), "{}", out.stderr);
            let stream = t.path(&format!("{name}.yaml"));
            std::fs::write(&stream, &out.stdout).expect("write the stream");
            let stream = stream.display().to_string();
            let read = capture(&venv.join("bin/python"), &[script, &stream]).await;
            assert_eq!(read.end, ProcessEnd::Exited(0), "{name}: {}", read.stderr);
            let got: Value = serde_json::from_str(&read.stdout).expect("the reader's JSON");
            let loaded = procman_core::config::load_file(&config).expect("the fixture loads");
            assert_eq!(got, expected(&loaded), "{name}");
        }
    })
    .await
    .expect("the test finished in time");
}
