use std::path::Path;

use super::probe::Url;
use super::*;
use crate::export::golden;
use procman_core::outcome::Signal;

const IMAGE: &str = "registry.example/shop:1.0";

fn opts(name: &str) -> Options {
    Options {
        name: name.to_string(),
        image: Some(IMAGE.to_string()),
    }
}

/// A config from `processes` (the entries of `managed_processes`).
pub(super) fn config(processes: &str) -> Config {
    let text = format!("managed_processes:\n{processes}");
    match procman_core::config::load_str(&text, Path::new("/srv/app/procman.yaml"), &|_| None) {
        Ok(c) => c,
        Err(e) => panic!("the test config must load:\n{e}\n{text}"),
    }
}

pub(super) fn rendered(processes: &str) -> Rendered {
    render(&config(processes), &opts("app")).expect("rendered")
}

/// Every file, as stdout has them.
pub(super) fn stream(r: &Rendered) -> String {
    r.files.iter().map(|f| f.text.as_str()).collect()
}

fn warnings(r: &Rendered) -> String {
    r.warnings
        .iter()
        .map(|w| format!("{}: {}\n", w.path, w.message))
        .collect()
}

pub(super) fn warned(r: &Rendered, path: &str, part: &str) -> bool {
    r.warnings
        .iter()
        .any(|w| w.path == path && w.message.contains(part))
}

#[test]
fn every_key_matches_its_golden_files() {
    let r = render(&golden::fixture("every-key"), &opts("shop")).expect("rendered");
    golden::check("kubernetes/every-key.yaml", &stream(&r));
    golden::check("kubernetes/every-key.warnings", &warnings(&r));
    golden::check(
        "kubernetes/every-key.README.md",
        r.readme.as_deref().unwrap_or_default(),
    );
    let names: Vec<&str> = r.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "db.yaml",
            "migrate.yaml",
            "api.yaml",
            "web.yaml",
            "reporter.yaml",
            "legacy.yaml"
        ]
    );
    assert_eq!(r.summary, "5 Deployments, a Job and 3 Services");
}

#[test]
fn spec_example_matches_its_golden_files() {
    let r = render(&golden::fixture("spec-example"), &opts("hsu-spec-example")).expect("rendered");
    golden::check("kubernetes/spec-example.yaml", &stream(&r));
    golden::check("kubernetes/spec-example.warnings", &warnings(&r));
    assert_eq!(r.summary, "a Deployment and a Service");
}

#[test]
fn strings_a_yaml_writer_could_get_wrong_match_their_golden_file() {
    // Read back byte for byte by PyYAML in the integration test.
    let r = render(&golden::fixture("kubernetes-strings"), &opts("strings")).expect("rendered");
    golden::check("kubernetes/strings.yaml", &stream(&r));
}

#[test]
fn a_process_without_an_image_is_named_with_the_fix() {
    let c = golden::fixture("every-key");
    let no_image = Options {
        name: "shop".to_string(),
        image: None,
    };
    let Err(ExportError::Incomplete(message)) = render(&c, &no_image) else {
        panic!("a process without an image must not export");
    };
    assert!(
        message.starts_with("no container image for `db`, `web`, `reporter`, `legacy`:"),
        "{message}"
    );
    assert!(message.contains("`export.image`") && message.contains("--image IMAGE"));
    // `export.image` wins over `--image`.
    let r = render(&c, &opts("shop")).expect("rendered");
    assert!(stream(&r).contains("image: registry.example/shop-api:2.0\n"));
}

#[test]
fn names_are_dns_labels_unique_and_warned_about() {
    let r = rendered(
        "  - {id: My_Api, management: {control: {executable: /bin/a}}}\n  - {id: my-api, management: {control: {executable: /bin/b}}}\n  - {id: \"007\", management: {control: {executable: /bin/c}}}\n",
    );
    let names: Vec<&str> = r.files.iter().map(|f| f.name.as_str()).collect();
    // A valid id keeps its name, even after an id that maps to it.
    assert_eq!(names, ["my-api-2.yaml", "my-api.yaml", "p-007.yaml"]);
    assert!(warned(
        &r,
        "managed_processes[0].id",
        "named `my-api-2` (`my-api` is another process's)"
    ));
    assert!(
        r.warnings
            .iter()
            .all(|w| w.path != "managed_processes[1].id"),
        "{:?}",
        r.warnings
    );
    assert!(r.files[1].text.contains("  name: my-api\n"));
    assert!(warned(&r, "managed_processes[2].id", "named `p-007`"));
    assert_eq!(object_name("_x"), "x");
    assert_eq!(object_name("-"), "x");
    assert_eq!(object_name("_1"), "p-1");
    assert!(r.files[2].text.contains("  name: p-007\n"));
    let taken = std::collections::HashSet::from(["a".repeat(63)]);
    assert_eq!(
        crate::export::unique_name("a".repeat(63), &taken, 63).len(),
        63
    );
}

#[test]
fn part_of_is_a_label_value() {
    assert_eq!(label_value("shop"), "shop");
    assert_eq!(label_value("My Shop!"), "My-Shop");
    assert_eq!(label_value("_x_"), "x");
    assert_eq!(label_value("..."), "procman");
    assert_eq!(label_value(&"b".repeat(70)).len(), 63);
    let r = render(
        &config("  - {id: a, management: {control: {executable: /bin/a}}}\n"),
        &opts("my app"),
    )
    .expect("rendered");
    assert!(warned(&r, "--name", "`my-app`"));
    assert!(stream(&r).contains("app.kubernetes.io/part-of: my-app\n"));
}

#[test]
fn commands_arguments_and_environment_keep_every_character() {
    let r = rendered(concat!(
        "  - id: a\n    management:\n      control:\n        executable: bin/$a\n",
        "        working_directory: /opt/a\n",
        "        arguments: [\"$(HOME)\", \"$$\", \"yes\", \"0123\", \"1.0\", \"on\", \"a b\", \"--x\", \"-1\"]\n",
        "        environment: [\"A=1\", \"B=x\", \"C=\"]\n",
    ));
    let text = stream(&r);
    assert!(
        text.contains("command:\n            - \"bin/$$a\"\n"),
        "{text}"
    );
    let args = "args:\n            - \"$$(HOME)\"\n            - \"$$\"\n            - \"yes\"\n            - \"0123\"\n            - \"1.0\"\n            - \"on\"\n            - \"a b\"\n            - --x\n            - \"-1\"\n";
    assert!(text.contains(args), "{text}");
    let env = "env:\n            - name: A\n              value: \"1\"\n            - name: B\n              value: x\n            - name: C\n              value: \"\"\n";
    assert!(text.contains(env), "{text}");
    assert!(text.contains("workingDir: /opt/a\n"));
    assert_eq!(verbatim("$HOME $(X) $$"), "$$HOME $$(X) $$$$");
}

#[test]
fn a_relative_executable_without_a_working_directory_is_warned_about() {
    let r = rendered("  - {id: a, management: {control: {executable: ./bin/a}}}\n");
    assert!(warned(
        &r,
        "managed_processes[0].management.control.executable",
        "image's working directory"
    ));
    assert!(!stream(&r).contains("workingDir"));
    let r = rendered("  - {id: a, management: {control: {executable: sleep}, restart_policy: {strategy: always}}}\n");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn http_probes_carry_scheme_host_path_and_credentials() {
    let r = rendered(concat!(
        "  - id: a\n    management:\n      control: {executable: /bin/a}\n",
        "      health_check:\n        http_endpoint: \"https://user:pw@example.com:8443/ready?full=1\"\n",
        "        interval: 1500ms\n        success_threshold: 2\n        initial_delay: 2s\n",
    ));
    let text = stream(&r);
    let get = "httpGet:\n              path: \"/ready?full=1\"\n              port: 8443\n              host: example.com\n              scheme: HTTPS\n              httpHeaders:\n                - name: Authorization\n                  value: \"Basic dXNlcjpwdw==\"\n";
    assert!(text.contains(get), "{text}");
    assert!(text.contains("initialDelaySeconds: 2\n            periodSeconds: 1\n            timeoutSeconds: 1\n            failureThreshold: 58\n"), "{text}");
    assert!(
        text.contains(
            "periodSeconds: 2\n            timeoutSeconds: 1\n            successThreshold: 2\n"
        ),
        "{text}"
    );
    let check = "managed_processes[0].management.health_check";
    assert!(warned(
        &r,
        &format!("{check}.http_endpoint"),
        "never verifies"
    ));
    assert!(warned(
        &r,
        &format!("{check}.interval"),
        "whole seconds: 2s"
    ));
    assert!(warned(
        &r,
        &format!("{check}.success_threshold"),
        "2 successes"
    ));
    // The check asks another host: its port is not this process's.
    assert!(!text.contains("kind: Service") && !text.contains("containerPort"));
    // A local endpoint names no host; a verified one warns nothing.
    let r = rendered(concat!(
        "  - id: a\n    management:\n      control: {executable: /bin/a}\n",
        "      health_check:\n        http_endpoint: \"https://localhost/\"\n        tls_skip_verify: true\n",
    ));
    assert!(stream(&r).contains(
        "httpGet:\n              path: /\n              port: 443\n              scheme: HTTPS\n"
    ));
    assert!(
        r.warnings.iter().all(|w| !w.path.contains("health_check")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn grpc_over_tls_becomes_a_connect_and_remote_hosts_are_warned_about() {
    let r = rendered(concat!(
        "  - id: a\n    management:\n      control: {executable: /bin/a}\n",
        "      health_check: {grpc_endpoint: \"https://db.internal:9000\"}\n",
    ));
    assert!(stream(&r).contains("tcpSocket:\n              port: 9000\n"));
    let key = "managed_processes[0].management.health_check.grpc_endpoint";
    assert!(warned(&r, key, "has no TLS"));
    assert!(warned(&r, key, "`db.internal` is not asked"));
}

#[test]
fn an_integrated_process_gets_a_port_and_a_grpc_probe() {
    let r = rendered("  - {id: a, type: integrated_managed, management: {control: {executable: /bin/a, arguments: [x], environment: {PROCMAN_PORT: 1, B: 2}}}}\n");
    let text = stream(&r);
    assert!(
        text.contains("args:\n            - x\n            - --port\n            - \"50051\"\n"),
        "{text}"
    );
    // PROCMAN_PORT is set over the environment, as procman sets it.
    assert!(text.contains("env:\n            - name: PROCMAN_PORT\n              value: \"50051\"\n            - name: B\n"), "{text}");
    assert!(text.contains("grpc:\n              port: 50051\n"));
    assert!(text.contains("kind: Service"));
    assert!(warned(
        &r,
        "managed_processes[0].management.control.port",
        "always 50051"
    ));
}

#[test]
fn without_restarts_there_is_no_liveness_probe_and_a_job_is_not_retried() {
    let r = rendered(concat!(
        "  - id: a\n    profile_type: batch\n    enabled: false\n    management:\n",
        "      control: {executable: /bin/a}\n      health_check: {command: \"true\"}\n",
        "      restart_policy: {strategy: never}\n",
        "  - {id: b, profile_type: batch, management: {control: {executable: /bin/b}, restart_policy: {max_attempts: 0}}}\n",
        "  - {id: c, management: {control: {executable: /bin/c}, health_check: {type: process}}}\n",
    ));
    let a = &r.files[0].text;
    assert!(
        a.contains("kind: Job\n") && a.contains("  suspend: true\n  backoffLimit: 0\n"),
        "{a}"
    );
    assert!(a.contains("restartPolicy: Never\n"));
    assert!(a.contains("readinessProbe") && !a.contains("livenessProbe"));
    assert!(r.files[1].text.contains("backoffLimit: 2147483647\n"));
    assert!(r.files[1].text.contains("restartPolicy: OnFailure\n"));
    assert!(!r.files[2].text.contains("Probe"));
    assert_eq!(r.summary, "a Deployment and 2 Jobs");
    assert!(r
        .readme
        .as_deref()
        .unwrap_or_default()
        .contains("`a`: its Job is suspended"));
}

#[test]
fn numeric_users_run_as_them_and_signals_have_kubernetes_names() {
    let r = rendered("  - {id: a, management: {control: {executable: /bin/a, user: \"0\", group: \"0\", shutdown_signal: SIGUSR2}}}\n");
    let text = stream(&r);
    assert!(
        text.contains("securityContext:\n            runAsUser: 0\n            runAsGroup: 0\n"),
        "{text}"
    );
    assert!(text.contains("os:\n        name: linux\n") && text.contains("stopSignal: SIGUSR2\n"));
    assert_eq!(container::signal_name(Signal(34)), "SIGRTMIN");
    assert_eq!(container::signal_name(Signal(37)), "SIGRTMIN+3");
    assert_eq!(container::signal_name(Signal(62)), "SIGRTMAX-2");
    assert_eq!(container::signal_name(Signal(64)), "SIGRTMAX");
    assert_eq!(container::signal_name(Signal::INT), "SIGINT");
}

#[test]
fn dependencies_wait_for_services_and_jobs_come_first() {
    let r = rendered(concat!(
        "  - {id: one, profile_type: batch, management: {control: {executable: /bin/one}}}\n",
        "  - id: two\n    profile_type: batch\n    depends_on: [{one: {condition: completed_successfully}}]\n    management: {control: {executable: /bin/two}}\n",
        "  - id: web\n    depends_on: [{two: {condition: completed_successfully}}, {one: {condition: completed_successfully}}]\n",
        "    management: {control: {executable: /bin/web}, health_check: {tcp_endpoint: \"localhost:80\"}}\n",
        "  - {id: cron, type: unmanaged, management: {discovery: {pid: 1}}}\n",
        "  - {id: quiet, depends_on: [web, cron, two], management: {control: {executable: /bin/q}}}\n",
    ));
    let quiet = &r.files[3].text;
    assert!(
        quiet.contains("- name: wait-for-web\n          image: busybox:1.36\n"),
        "{quiet}"
    );
    assert!(quiet.contains("until nc -z -w 2 web 80; do"));
    assert!(warned(
        &r,
        "managed_processes[4].depends_on[1]",
        "`cron` is unmanaged"
    ));
    assert!(warned(
        &r,
        "managed_processes[4].depends_on[2]",
        "`two` serves no port"
    ));
    assert!(warned(
        &r,
        "managed_processes[2].depends_on[0]",
        "kubectl wait --for=condition=complete job/two"
    ));
    let readme = r.readme.as_deref().unwrap_or_default();
    let order = "kubectl apply -f one.yaml -f quiet.yaml\nkubectl wait --for=condition=complete --timeout=1h job/one   # two, web wait for it\nkubectl apply -f two.yaml\nkubectl wait --for=condition=complete --timeout=1h job/two   # web waits for it\nkubectl apply -f web.yaml\n";
    assert!(readme.contains(order), "{readme}");
}

#[test]
fn init_containers_never_take_the_name_of_another_container() {
    let r = rendered(concat!(
        "  - {id: db, management: {control: {executable: /bin/db}, health_check: {tcp_endpoint: \"localhost:5432\"}}}\n",
        "  - {id: wait-for-db, depends_on: [db], management: {control: {executable: /bin/w}}}\n",
    ));
    let text = &r.files[1].text;
    assert!(
        text.contains("- name: wait-for-db-2\n          image: busybox:1.36\n"),
        "{text}"
    );
    assert!(
        text.contains("- name: wait-for-db\n          image: registry.example/shop:1.0\n"),
        "{text}"
    );
}

#[test]
fn limits_become_resources_and_the_rest_warns() {
    let r = rendered("  - {id: a, management: {control: {executable: /bin/a}, resource_limits: {max_memory_mb: 64, max_cpu_percent: 0.1, max_file_descriptors: 10}}}\n");
    assert!(
        stream(&r).contains("limits:\n              cpu: \"1m\"\n              memory: \"64Mi\"\n")
    );
    assert!(warned(
        &r,
        "managed_processes[0].management.resource_limits.max_file_descriptors",
        "open-file limit"
    ));
}

#[test]
fn shell_words_are_quoted_when_a_shell_would_split_or_expand_them() {
    assert_eq!(shell_word("/etc/shop/db.env"), "/etc/shop/db.env");
    assert_eq!(shell_word("/etc/my app.env"), "'/etc/my app.env'");
    assert_eq!(shell_word("/etc/it's"), "'/etc/it'\\''s'");
    assert_eq!(shell_word("$HOME/\"x\"\\"), "'$HOME/\"x\"\\'");
    assert_eq!(shell_word("a\nb"), "'a\nb'");
    assert_eq!(shell_word("100%"), "100%");
    assert_eq!(shell_word("/héllo"), "'/héllo'");
    assert_eq!(shell_word(""), "''");
    let r = rendered(
        "  - {id: a, management: {control: {executable: /bin/a, env_file: \"/etc/my app.env\"}}}\n",
    );
    assert!(warned(
        &r,
        "managed_processes[0].management.control.env_file",
        "--from-env-file='/etc/my app.env'"
    ));
    assert!(r
        .readme
        .as_deref()
        .unwrap_or_default()
        .contains("kubectl create secret generic a-env --from-env-file='/etc/my app.env'\n"));
    assert!(
        stream(&r).contains("envFrom:\n            - secretRef:\n                name: a-env\n")
    );
}

#[test]
fn summaries_count_each_kind() {
    assert_eq!(summary(&[]), "no objects");
    assert_eq!(
        summary(&["Service", "Deployment"]),
        "a Deployment and a Service"
    );
    assert_eq!(summary(&["Job", "Job"]), "2 Jobs");
}

#[test]
fn endpoints_split_into_what_a_probe_needs() {
    let url = Url::parse("https://u:p@[::1]:8443/x?y=1#frag");
    assert_eq!(
        url,
        Url {
            scheme: "https",
            userinfo: Some("u:p"),
            host: "::1",
            path: "/x?y=1"
        }
    );
    assert_eq!(Url::parse("localhost:5432").host, "localhost");
    assert_eq!(Url::parse("http://example.com").path, "");
    assert_eq!(Url::parse("db:1").scheme, "");
}
