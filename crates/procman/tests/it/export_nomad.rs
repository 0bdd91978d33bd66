//! `procman export --format nomad` as a user runs it: the job file and
//! README it writes, stdout mode, the warnings and the summary on stderr,
//! and the job read back by an independent HCL2 parser, python-hcl2
//! (PyPI), from a virtualenv made by `python_venv`. Where a `nomad`
//! binary is installed, `nomad job validate` checks the jobs too.

use std::path::{Path, PathBuf};

use procman_core::outcome::ProcessEnd;
use serde_json::Value;

use crate::api::python_venv;
use crate::support::*;

/// The python-hcl2 release line the test was written against (8 keeps
/// strings quoted and escaped as written: the script below unescapes them).
const PYTHON_HCL2: &str = "python-hcl2>=8,<9";

/// Reads a job with `hcl2.load` and prints it as JSON: labels and strings
/// unquoted and unescaped (HCL's escapes are JSON's, plus `$${` and
/// `%%{`), block markers and comments left out.
const READ_JOB: &str = r#"
import json, sys, hcl2

def text(s):
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return json.loads(s).replace("$${", "${").replace("%%{", "%{")
    return s

def norm(v):
    if isinstance(v, dict):
        return {text(k): norm(x) for k, x in v.items() if not k.startswith("__")}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, str):
        return text(v)
    return v

with open(sys.argv[1], encoding="utf-8") as f:
    print(json.dumps(norm(hcl2.load(f))))
"#;

fn fixture(name: &str) -> PathBuf {
    crate::export_cli::export_fixture(name)
}

/// Runs `procman export ARGS`: how it ended, its stdout and its stderr.
async fn export(args: &[&str]) -> (ProcessEnd, String, String) {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    run_split(Path::new(procman()), &all).await
}

/// The job read back by python-hcl2, or `None` when it cannot run here.
async fn parsed(t: &Scratch, job: &Path) -> Option<Value> {
    let venv = python_venv("python-hcl2", &[PYTHON_HCL2]).await?;
    let script = t.path("read_job.py");
    std::fs::write(&script, READ_JOB).expect("write the script");
    let (end, out) = run(
        &venv.join("bin/python"),
        &[&script.display().to_string(), &job.display().to_string()],
        &[],
    )
    .await;
    assert_eq!(
        end,
        ProcessEnd::Exited(0),
        "python-hcl2 cannot read {}:\n{out}",
        job.display()
    );
    Some(serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
}

/// The body of the labelled blocks `kind` in `v`, by label.
fn labelled<'a>(v: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    v[kind]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b.as_object())
                .flat_map(|b| b.iter().map(|(k, body)| (k.as_str(), body)))
                .collect()
        })
        .unwrap_or_default()
}

fn one<'a>(v: &'a Value, kind: &str, label: &str) -> &'a Value {
    labelled(v, kind)
        .into_iter()
        .find(|(l, _)| *l == label)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no {kind} {label:?} in {v:#}"))
}

/// The first unlabelled block `kind` in `v`.
fn block<'a>(v: &'a Value, kind: &str) -> &'a Value {
    &v[kind][0]
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_key_job_parses_with_the_expected_stanzas() {
    let t = Scratch::new();
    let dir = t.path("out");
    let config = fixture("every-key").display().to_string();
    let dir_s = dir.display().to_string();
    let (end, _, err) = export(&["--format", "nomad", "-c", &config, "-o", &dir_s]).await;
    assert_eq!(end, ProcessEnd::Exited(0), "{err}");
    let Some(parsed) = parsed(&t, &dir.join("every-key.nomad.hcl")).await else {
        return;
    };
    let job = one(&parsed, "job", "every-key");
    assert_eq!(job["type"], "service");
    let groups: Vec<&str> = labelled(job, "group").iter().map(|(l, _)| *l).collect();
    assert_eq!(groups, ["db", "api", "web", "reporter", "legacy"]);

    let db_group = one(job, "group", "db");
    assert_eq!(db_group["count"], 1);
    assert_eq!(
        one(block(db_group, "network"), "port", "db")["static"],
        5432
    );
    assert_eq!(block(db_group, "reschedule")["attempts"], 0);
    let db = one(db_group, "task", "db");
    assert_eq!(db["driver"], "raw_exec");
    assert_eq!(db["user"], "nobody");
    assert_eq!(db["kill_signal"], "SIGINT");
    assert_eq!(db["kill_timeout"], "30s");
    let cfg = block(db, "config");
    assert_eq!(cfg["command"], "/usr/bin/env");
    // Values come back byte for byte.
    assert_eq!(
        strings(&cfg["args"]),
        [
            "postgres",
            "-D",
            "/var/lib/postgres/data",
            "-c",
            "listen_addresses=*"
        ]
    );
    assert_eq!(cfg["work_dir"], "/var/lib/postgres");
    let env = block(db, "env");
    assert_eq!(env["GREETING"], "it's \"quoted\" $HOME and 100%");
    assert_eq!(env["PGDATA"], "/var/lib/postgres/data");
    assert_eq!(block(db, "template")["source"], "/etc/shop/db.env");
    assert_eq!(block(db, "template")["env"], true);
    let restart = block(db, "restart");
    assert_eq!(
        (
            &restart["attempts"],
            &restart["interval"],
            &restart["delay"],
            &restart["mode"]
        ),
        (
            &Value::from(10),
            &Value::from("600s"),
            &Value::from("2s"),
            &Value::from("fail")
        )
    );
    assert_eq!(block(db, "resources")["memory"], 2048);
    assert_eq!(block(db, "logs")["max_files"], 3);
    let service = block(db, "service");
    assert_eq!(
        (&service["name"], &service["port"], &service["provider"]),
        (
            &Value::from("db"),
            &Value::from("db"),
            &Value::from("nomad")
        )
    );
    let check = block(service, "check");
    assert_eq!(
        (&check["type"], &check["interval"]),
        (&Value::from("tcp"), &Value::from("5s"))
    );
    assert_eq!(block(check, "check_restart")["limit"], 5);

    // The batch process runs before api, in its group.
    let api_group = one(job, "group", "api");
    let tasks: Vec<&str> = labelled(api_group, "task")
        .iter()
        .map(|(l, _)| *l)
        .collect();
    assert_eq!(tasks, ["migrate", "api"]);
    let migrate = one(api_group, "task", "migrate");
    assert_eq!(block(migrate, "lifecycle")["hook"], "prestart");
    assert_eq!(block(migrate, "lifecycle")["sidecar"], false);
    assert_eq!(migrate["driver"], "docker");
    assert_eq!(
        block(migrate, "config")["image"],
        "registry.example/shop-migrate:2.0"
    );
    assert_eq!(block(migrate, "restart")["attempts"], 2);
    let api = one(api_group, "task", "api");
    let cfg = block(api, "config");
    assert_eq!(strings(&cfg["entrypoint"]), ["/srv/shop/bin/api"]);
    assert_eq!(
        strings(&cfg["args"]),
        ["--listen", "0.0.0.0", "--port", "8443"]
    );
    assert_eq!(strings(&cfg["ports"]), ["api"]);
    assert_eq!(block(api, "env")["PROCMAN_PORT"], "8443");
    let check = block(block(api, "service"), "check");
    assert_eq!(
        (&check["type"], &check["grpc_service"]),
        (&Value::from("grpc"), &Value::from("shop.Api"))
    );
    assert_eq!(block(api, "service")["provider"], "consul");

    let web = one(one(job, "group", "web"), "task", "web");
    let check = block(block(web, "service"), "check");
    assert_eq!(
        (&check["type"], &check["path"]),
        (&Value::from("http"), &Value::from("/healthz"))
    );

    let reporter = one(one(job, "group", "reporter"), "task", "reporter");
    let check = block(block(reporter, "service"), "check");
    assert_eq!(check["type"], "script");
    assert_eq!(check["command"], "/bin/sh");
    assert_eq!(strings(&check["args"]), ["-c", "test -d /proc/self"]);
    assert!(
        check.get("check_restart").is_none(),
        "strategy never: {check:#}"
    );
    assert_eq!(block(reporter, "restart")["attempts"], 0);

    assert_eq!(one(job, "group", "legacy")["count"], 0);
    assert!(labelled(job, "group").iter().all(|(l, _)| *l != "cron"));
}

#[tokio::test]
async fn spec_example_with_an_image_runs_on_docker() {
    let t = Scratch::new();
    let config = fixture("spec-example").display().to_string();
    let (end, out, err) = export(&[
        "--format",
        "nomad",
        "-c",
        &config,
        "--image",
        "registry.example/app:1.4",
        "--name",
        "app",
    ])
    .await;
    assert_eq!(end, ProcessEnd::Exited(0), "{err}");
    let job_file = t.path("app.nomad.hcl");
    std::fs::write(&job_file, &out).expect("write the job");
    let Some(parsed) = parsed(&t, &job_file).await else {
        return;
    };
    let task = one(
        one(one(&parsed, "job", "app"), "group", "my-service"),
        "task",
        "my-service",
    );
    assert_eq!(task["driver"], "docker");
    let cfg = block(task, "config");
    assert_eq!(cfg["image"], "registry.example/app:1.4");
    assert_eq!(strings(&cfg["entrypoint"]), ["./my-service"]);
    assert_eq!(strings(&cfg["args"]), ["--port", "8080"]);
    assert_eq!(cfg["work_dir"], "/opt/service");
    assert_eq!(block(task, "env")["SERVICE_ENV"], "production");
    let check = block(block(task, "service"), "check");
    assert_eq!(
        (&check["path"], &check["timeout"]),
        (&Value::from("/health"), &Value::from("5s"))
    );
    validate_with_nomad(&job_file).await;
}

#[tokio::test]
async fn cli_writes_job_and_readme_and_reports_on_stderr() {
    let t = Scratch::new();
    let config = fixture("every-key").display().to_string();
    let dir = t.path("jobs/nested");
    let dir_s = dir.display().to_string();
    let (end, out, err) = export(&["--format", "nomad", "-c", &config, "-o", &dir_s]).await;
    assert_eq!(end, ProcessEnd::Exited(0), "{err}");
    assert!(out.is_empty(), "nothing on stdout with -o: {out}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the directory is created")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["README.md", "every-key.nomad.hcl"]);
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
    assert!(
        readme.contains("nomad job validate every-key.nomad.hcl"),
        "{readme}"
    );
    assert!(readme.contains("raw_exec"), "{readme}");
    let job = std::fs::read_to_string(dir.join("every-key.nomad.hcl")).expect("job");
    assert!(job.contains("job \"every-key\" {"), "{job}");

    // Warnings name the file and the key; the summary line comes last.
    let lines: Vec<&str> = err.lines().collect();
    let warning = format!(
        "{config}: managed_processes[6]: warning: `cron` is unmanaged (started elsewhere): nothing is exported for it to Nomad"
    );
    assert!(lines.contains(&warning.as_str()), "{err}");
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{config}: managed_processes[3].depends_on[0]: warning: Nomad has no ordering between groups"))),
        "{err}"
    );
    // The summary counts every warning; a kind of many is shown as two
    // lines and a count of the others.
    let count: usize = lines
        .iter()
        .filter_map(|l| l.split_once(": warning: ").map(|(_, m)| m))
        .map(|m| {
            m.split_once(" more like it")
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or(1)
        })
        .sum();
    let summary = lines.last().copied().unwrap_or_default();
    assert_eq!(
        summary,
        format!("procman export: a service job of 5 groups (6 tasks) for nomad to {dir_s}/, {count} warnings")
    );

    // Without -o the job goes to stdout, and no README.
    let (end, out, err) = export(&["--format", "nomad", "-c", &config]).await;
    assert_eq!(end, ProcessEnd::Exited(0), "{err}");
    assert_eq!(out, job);
    assert_eq!(
        err.lines().last().unwrap_or_default(),
        format!("procman export: a service job of 5 groups (6 tasks) for nomad to stdout, {count} warnings")
    );
    validate_with_nomad(&dir.join("every-key.nomad.hcl")).await;
}

/// Arguments and variables with every character HCL escapes come back
/// as written, from the file python-hcl2 reads.
#[tokio::test]
async fn tricky_values_come_back_byte_for_byte() {
    let t = Scratch::new();
    let config = t.path("tricky.yaml");
    std::fs::write(
        &config,
        concat!(
            "managed_processes:\n",
            "  - id: tricky\n",
            "    type: integrated_managed\n",
            "    management:\n",
            "      control:\n",
            "        executable: /bin/echo\n",
            "        arguments: [\"two words\", \"quote \\\" back \\\\ slash\", \"$${HOME} and %{x}\", ",
            "\"line\\nbreak\\ttab\\r\", \"h\u{e9}llo \u{65e5}\u{672c}\", \"bell\\a\"]\n",
            "        environment:\n",
            "          A.B: \"dotted\"\n",
            "          PLAIN: \"100% $PATH\"\n",
        ),
    )
    .expect("write the config");
    let config_s = config.display().to_string();
    let (end, out, err) = export(&["--format", "nomad", "-c", &config_s]).await;
    assert_eq!(end, ProcessEnd::Exited(0), "{err}");
    // Our own interpolation is HCL's; the config's `${` is escaped.
    assert!(out.contains(r#""--port", "${NOMAD_PORT_tricky}""#), "{out}");
    assert!(out.contains(r#""$${HOME} and %%{x}""#), "{out}");
    assert!(err.contains("tricky.yaml: managed_processes[0].management.control.arguments: warning: contains `${NAME}`"), "{err}");
    let job_file = t.path("tricky.nomad.hcl");
    std::fs::write(&job_file, &out).expect("write the job");
    let Some(parsed) = parsed(&t, &job_file).await else {
        return;
    };
    let task = one(
        one(one(&parsed, "job", "tricky"), "group", "tricky"),
        "task",
        "tricky",
    );
    assert_eq!(
        strings(&block(task, "config")["args"]),
        [
            "two words",
            "quote \" back \\ slash",
            "${HOME} and %{x}",
            "line\nbreak\ttab\r",
            "h\u{e9}llo \u{65e5}\u{672c}",
            "bell\u{7}",
            "--port",
            "${NOMAD_PORT_tricky}",
        ]
    );
    // A name that is not an HCL identifier: `env` as a map.
    assert_eq!(task["env"]["A.B"], "dotted");
    assert_eq!(task["env"]["PLAIN"], "100% $PATH");
    assert_eq!(task["env"]["PROCMAN_PORT"], "${NOMAD_PORT_tricky}");
}

#[tokio::test]
async fn a_name_nomad_refuses_is_a_usage_error() {
    let config = fixture("spec-example").display().to_string();
    for name in ["my app", "-x"] {
        let name = format!("--name={name}");
        let (end, out, err) = export(&["--format", "nomad", "-c", &config, &name]).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{name}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("not one Nomad accepts"), "{err}");
    }
}

/// `nomad job validate` where a `nomad` binary is installed; it is not
/// fetched for the test (it checks more than the syntax: drivers and
/// Consul are those of the agent it talks to, when there is one).
async fn validate_with_nomad(job: &Path) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(nomad) = std::env::split_paths(&path)
        .map(|d| d.join("nomad"))
        .find(|p| p.is_file())
    else {
        eprintln!(
            "no nomad binary in PATH: `nomad job validate` not run (python-hcl2 read the job)"
        );
        return;
    };
    let (end, out) = run(
        &nomad,
        &["job", "validate", &job.display().to_string()],
        &[],
    )
    .await;
    assert_eq!(end, ProcessEnd::Exited(0), "nomad job validate:\n{out}");
}
