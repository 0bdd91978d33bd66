use std::path::Path;
use std::sync::Arc;

use procman_core::config::{Config, ProcessConfig};

use super::hcl::{is_identifier, quote, runtime_interpolated, Block, Value};
use super::*;
use crate::export::golden;

pub(super) fn opts(name: &str) -> Options {
    Options {
        name: name.to_string(),
        image: None,
    }
}

/// A config from `processes` (the `managed_processes` entries, indented
/// by two spaces), loaded as `/srv/app/app.yaml`.
pub(super) fn config(processes: &str) -> Config {
    let text = format!("managed_processes:\n{processes}");
    match procman_core::config::load_str(&text, Path::new("/srv/app/app.yaml"), &|_| None) {
        Ok(c) => c,
        Err(e) => panic!("test config invalid:\n{e}\n{text}"),
    }
}

fn process(config: &mut Config, i: usize) -> &mut ProcessConfig {
    Arc::make_mut(&mut config.processes[i])
}

pub(super) fn job(config: &Config, o: &Options) -> (String, Vec<Warning>) {
    let r = render(config, o).expect("render");
    (r.files[0].text.clone(), r.warnings)
}

pub(super) fn warned(warnings: &[Warning], path: &str, part: &str) -> bool {
    warnings
        .iter()
        .any(|w| w.path == path && w.message.contains(part))
}

#[test]
fn golden_files() {
    for fixture in ["every-key", "spec-example"] {
        let config = golden::fixture(fixture);
        let r = render(&config, &opts(fixture)).expect("render");
        assert_eq!(r.files.len(), 1);
        assert_eq!(r.files[0].name, format!("{fixture}.nomad.hcl"));
        golden::check(&format!("nomad/{fixture}.nomad.hcl"), &r.files[0].text);
        let warnings: String = r
            .warnings
            .iter()
            .map(|w| format!("{}: {}\n", w.path, w.message))
            .collect();
        golden::check(&format!("nomad/{fixture}.warnings"), &warnings);
        golden::check(
            &format!("nomad/{fixture}.README.md"),
            r.readme.as_deref().unwrap_or_default(),
        );
    }
}

#[test]
fn strings_are_quoted_by_hcl_rules() {
    assert_eq!(quote("two words"), r#""two words""#);
    assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
    assert_eq!(quote(r"C:\dir\"), r#""C:\\dir\\""#);
    assert_eq!(quote("a\nb\r\tc"), r#""a\nb\r\tc""#);
    // Template sequences are doubled; a lone `$` or `%` is literal.
    assert_eq!(
        quote("${HOME} $HOME 100% %{if}"),
        r#""$${HOME} $HOME 100% %%{if}""#
    );
    assert_eq!(quote("$${x}"), r#""$$${x}""#);
    assert_eq!(quote("end$"), r#""end$""#);
    // Non-ASCII as it is; other control characters as \uNNNN.
    assert_eq!(quote("héllo 日本 🚀"), "\"héllo 日本 🚀\"");
    assert_eq!(quote("bell\u{7}del\u{7f}"), r#""bell\u0007del\u007f""#);
}

#[test]
fn interpolations_of_our_own_are_kept() {
    let mut b = Block::new("env", &[]);
    b.attr("PORT", Value::Interpolated("${NOMAD_PORT_api}".into()));
    b.attr("TEXT", Value::str("${NOMAD_PORT_api}"));
    assert_eq!(
        b.render(),
        "env {\n  PORT = \"${NOMAD_PORT_api}\"\n  TEXT = \"$${NOMAD_PORT_api}\"\n}\n"
    );
}

#[test]
fn layout_aligns_attributes_and_spaces_blocks() {
    let mut inner = Block::new("port", &["a b"]);
    inner.int("static", 80);
    let mut b = Block::new("group", &["g"]);
    b.int("count", 1).str("longer_name", "x");
    b.block(inner).block(Block::new("port", &["dyn"]));
    b.attr("m", Value::Map(vec![("A.B".into(), Value::str("1"))]));
    assert_eq!(
        b.render(),
        "group \"g\" {\n  count       = 1\n  longer_name = \"x\"\n\n  port \"a b\" {\n    static = 80\n  }\n\n  port \"dyn\" {}\n\n  m = {\n    \"A.B\" = \"1\"\n  }\n}\n"
    );
}

#[test]
fn identifiers_and_runtime_interpolation() {
    assert!(is_identifier("PGDATA") && is_identifier("_x-1"));
    assert!(!is_identifier("A.B") && !is_identifier("1A") && !is_identifier("true"));
    assert!(runtime_interpolated("x ${HOME} y") && runtime_interpolated("${a.b-c}"));
    assert!(!runtime_interpolated("$HOME ${} ${a b} ${unclosed"));
}

#[test]
fn endpoints_give_host_and_path() {
    use super::service::split_endpoint;
    let pair = |h: &str, p: &str| (h.to_string(), p.to_string());
    assert_eq!(
        split_endpoint("http://localhost:8080/health?x=1"),
        pair("localhost", "/health?x=1")
    );
    assert_eq!(split_endpoint("https://[::1]:8443"), pair("::1", "/"));
    assert_eq!(split_endpoint("http://h/?q#frag"), pair("h", "/?q"));
    assert_eq!(split_endpoint("127.0.0.1:5432").0, "127.0.0.1");
}

#[test]
fn env_names_that_are_not_identifiers_use_a_map() {
    let c = config("  - id: a\n    management:\n      control:\n        executable: /bin/true\n        environment: [\"A.B=1\", \"X=2\"]\n");
    let (text, _) = job(&c, &opts("app"));
    assert!(
        text.contains("      env = {\n        \"A.B\" = \"1\"\n        \"X\"   = \"2\"\n      }\n"),
        "{text}"
    );
}

#[test]
fn batch_only_config_is_a_batch_job_with_prestart_chains() {
    let c = config(
        "  - id: fetch\n    profile_type: batch\n    management: {control: {executable: /bin/true}}\n\
         \x20 - id: build\n    profile_type: batch\n    depends_on: [{fetch: {condition: completed_successfully}}]\n    management: {control: {executable: /bin/true}}\n",
    );
    let (text, warnings) = job(&c, &opts("app"));
    assert!(text.contains("type        = \"batch\""), "{text}");
    assert!(!text.contains("group \"fetch\""), "{text}");
    assert!(text.contains("    task \"fetch\" {\n      driver       = \"raw_exec\"\n      kill_timeout = \"10s\"\n\n      lifecycle {\n        hook    = \"prestart\""), "{text}");
    assert!(
        !warnings.iter().any(|w| w.path.contains("depends_on")),
        "{warnings:?}"
    );
    assert!(warned(
        &warnings,
        "managed_processes[0].management.control.working_directory",
        "task's own directory"
    ));
}

#[test]
fn a_batch_nobody_waits_for_is_a_poststart_task() {
    let c = config(
        "  - id: db\n    management: {control: {executable: /bin/true}}\n\
         \x20 - id: seed\n    profile_type: batch\n    depends_on: [db]\n    management: {control: {executable: /bin/true}}\n",
    );
    let (text, warnings) = job(&c, &opts("app"));
    assert!(text.contains("hook    = \"poststart\""), "{text}");
    assert_eq!(text.matches("group \"").count(), 1, "{text}");
    assert!(warned(
        &warnings,
        "managed_processes[1]",
        "poststart task of group `db`"
    ));
    // `started` on a process without a check is what poststart waits for.
    assert!(
        !warnings.iter().any(|w| w.path.contains("depends_on")),
        "{warnings:?}"
    );
}

#[test]
fn restart_limits_fit_nomads_rules() {
    let mut c = config(
        "  - id: a\n    management:\n      control: {executable: /bin/true}\n      restart_policy: {max_attempts: 0, restart_delay: 2s, backoff_multiplier: 1, window: 1m}\n\
         \x20 - id: b\n    management:\n      control: {executable: /bin/true}\n      restart_policy: {max_attempts: 10, restart_delay: 30s, max_delay: 30s, window: 2s}\n",
    );
    let (text, warnings) = job(&c, &opts("app"));
    assert!(text.contains("attempts = 30\n        interval = \"60s\"\n        delay    = \"2s\"\n        mode     = \"delay\""), "{text}");
    assert!(text.contains("attempts = 10\n        interval = \"300s\"\n        delay    = \"30s\"\n        mode     = \"fail\""), "{text}");
    assert!(warned(
        &warnings,
        "managed_processes[1].management.restart_policy.window",
        "written as 300s"
    ));
    assert!(!warnings.iter().any(|w| w
        .path
        .ends_with("[0].management.restart_policy.backoff_multiplier")));
    process(&mut c, 0).restart.strategy = procman_core::config::RestartStrategy::Never;
    let (text, _) = job(&c, &opts("app"));
    assert!(
        text.contains("attempts = 0\n        interval = \"60s\""),
        "{text}"
    );
}

#[test]
fn integrated_process_without_port_gets_a_dynamic_one() {
    let c = config("  - id: my-api\n    type: integrated_managed\n    management: {control: {executable: /bin/true}}\n");
    let (text, warnings) = job(&c, &opts("app"));
    assert!(text.contains("      port \"my_api\" {}\n"), "{text}");
    assert!(
        text.contains("args    = [\"--port\", \"${NOMAD_PORT_my_api}\"]"),
        "{text}"
    );
    assert!(
        text.contains("PROCMAN_PORT = \"${NOMAD_PORT_my_api}\""),
        "{text}"
    );
    assert!(text.contains("type     = \"grpc\""), "{text}");
    assert!(text.contains("address  = \"127.0.0.1\""), "{text}");
    assert!(warned(
        &warnings,
        "managed_processes[0].management.health_check",
        "needs Consul"
    ));
    assert!(
        !warnings.iter().any(|w| w.path.ends_with(".id")),
        "{warnings:?}"
    );
}

#[test]
fn docker_carries_user_group_and_limits() {
    let mut c = config(
        "  - id: Web_1\n    export: {image: \"nginx:1\"}\n    management:\n      control: {executable: nginx, arguments: [\"-g\", \"daemon off;\"]}\n      resource_limits: {max_memory_mb: 5, max_file_descriptors: 1024, max_processes: 64}\n      health_check: {http_endpoint: \"https://127.0.0.1:8443/x\", interval: 500ms, timeout: 200ms, tls_skip_verify: true}\n",
    );
    let p = process(&mut c, 0);
    p.control.user = Some("app".into());
    p.control.group = Some("staff".into());
    let (text, warnings) = job(&c, &opts("app"));
    for line in [
        "user         = \"app:staff\"",
        "entrypoint = [\"nginx\"]",
        "pids_limit = 64",
        "nofile = \"1024:1024\"",
        "memory = 10",
        "protocol        = \"https\"",
        "tls_skip_verify = true",
        "interval        = \"1s\"",
        "name     = \"web-1\"",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(!text.contains("address"), "{text}");
    assert!(warned(&warnings, "managed_processes[0].id", "`web-1`"));
    assert!(warned(
        &warnings,
        "managed_processes[0].management.health_check.timeout",
        "written as 1s"
    ));
    assert!(warned(
        &warnings,
        "managed_processes[0].management.resource_limits.max_memory_mb",
        "written as 10"
    ));
    assert!(
        !warnings.iter().any(|w| w.path.ends_with("max_processes")),
        "{warnings:?}"
    );
}

#[test]
fn strings_nomad_would_interpolate_are_warned() {
    let c = config("  - id: a\n    management: {control: {executable: /bin/echo, arguments: [\"$${HOME}\"]}}\n");
    let (text, warnings) = job(&c, &opts("app"));
    assert!(text.contains("args    = [\"$${HOME}\"]"), "{text}");
    assert!(warned(
        &warnings,
        "managed_processes[0].management.control.arguments",
        "no escape"
    ));
}

#[test]
fn names_nomad_refuses_and_empty_configs_are_errors() {
    let c = config("  - id: a\n    management: {control: {executable: /bin/true}}\n");
    assert!(render(&c, &opts("my app")).is_err());
    assert!(render(&c, &opts("a/b")).is_err());
    let none = config("  - id: c\n    type: unmanaged\n    management: {discovery: {pid: 1}}\n");
    let Err(ExportError::Incomplete(m)) = render(&none, &opts("app")) else {
        panic!("an export with no managed process must fail");
    };
    assert!(m.contains("no managed process"), "{m}");
}

#[test]
fn chained_batch_processes_share_the_group_and_are_not_ordered() {
    let c = config(
        "  - id: schema\n    profile_type: batch\n    management: {control: {executable: /bin/true}}\n\
         \x20 - id: seed\n    profile_type: batch\n    depends_on: [{schema: {condition: completed_successfully}}]\n    management: {control: {executable: /bin/true}}\n\
         \x20 - id: api\n    depends_on: [{seed: {condition: completed_successfully}}, cron]\n    management: {control: {executable: /bin/true}}\n\
         \x20 - id: cron\n    type: unmanaged\n    management: {discovery: {pid: 1}}\n",
    );
    let (text, warnings) = job(&c, &opts("app"));
    assert_eq!(text.matches("group \"").count(), 1, "{text}");
    assert_eq!(text.matches("hook    = \"prestart\"").count(), 2, "{text}");
    assert!(warned(
        &warnings,
        "managed_processes[1].depends_on[0]",
        "tasks of group `api` that Nomad starts together"
    ));
    assert!(!warnings
        .iter()
        .any(|w| w.path == "managed_processes[2].depends_on[0]"));
    assert!(warned(
        &warnings,
        "managed_processes[2].depends_on[1]",
        "`cron` is unmanaged"
    ));
    assert!(warned(
        &warnings,
        "managed_processes[3]",
        "nothing is exported"
    ));
}

#[test]
fn large_log_rotation_gets_an_ephemeral_disk() {
    let c = config(
        "  - id: a\n    management:\n      control: {executable: /bin/true}\n      logging: {rotation: {max_size_mb: 100, max_files: 5}}\n",
    );
    let (text, _) = job(&c, &opts("app"));
    assert!(
        text.contains("    ephemeral_disk {\n      size = 501\n    }\n"),
        "{text}"
    );
    assert!(
        text.contains("max_files     = 5\n        max_file_size = 100"),
        "{text}"
    );
}
