//! What the pod of a process holds where a value of the config cannot be
//! written as it is: the grace period, environment names, the working
//! directory, and a probe's credentials.

use super::container::{env_name, EnvName};
use super::tests::{config, rendered, stream, warned};
use super::*;

const CONTROL: &str = "managed_processes[0].management.control";

#[test]
fn a_grace_period_of_0s_is_written_as_1s_with_a_warning() {
    let r = rendered(
        "  - {id: a, management: {control: {executable: /bin/a, shutdown_timeout: 0s}}}\n",
    );
    let text = stream(&r);
    assert!(
        text.contains("terminationGracePeriodSeconds: 1\n"),
        "{text}"
    );
    assert!(!text.contains("terminationGracePeriodSeconds: 0"), "{text}");
    assert!(warned(
        &r,
        &format!("{CONTROL}.shutdown_timeout"),
        "force deletion"
    ));
    // Any other value is its whole seconds, without a warning.
    let r = rendered(
        "  - {id: a, management: {control: {executable: /bin/a, shutdown_timeout: 7s}}}\n",
    );
    assert!(stream(&r).contains("terminationGracePeriodSeconds: 7\n"));
    assert!(r
        .warnings
        .iter()
        .all(|w| !w.path.ends_with("shutdown_timeout")));
}

#[test]
fn environment_names_follow_the_api_servers_rules() {
    assert_eq!(env_name("PATH"), EnvName::Valid);
    assert_eq!(env_name("my-var.x_1"), EnvName::Valid);
    assert_eq!(env_name("_"), EnvName::Valid);
    assert_eq!(env_name("1X"), EnvName::Relaxed);
    assert_eq!(env_name("A B:C"), EnvName::Relaxed);
    assert_eq!(env_name("ÜML"), EnvName::Refused);
    assert_eq!(env_name("TAB\t"), EnvName::Refused);
    assert_eq!(env_name(""), EnvName::Refused);

    let r = rendered(concat!(
        "  - id: a\n    management:\n      control:\n        executable: /bin/a\n",
        "        environment: {GOOD: \"1\", \"1X\": \"2\", \"ÜML\": \"3\", my.var: \"4\"}\n",
    ));
    let text = stream(&r);
    let env = "env:\n            - name: GOOD\n              value: \"1\"\n            - name: \"1X\"\n              value: \"2\"\n            - name: my.var\n              value: \"4\"\n";
    assert!(text.contains(env), "{text}");
    assert!(!text.contains("ÜML"), "{text}");
    let key = format!("{CONTROL}.environment");
    assert!(warned(&r, &key, "\"ÜML\" is left out"));
    assert!(warned(
        &r,
        &key,
        "\"1X\" is taken by Kubernetes 1.32 and later only"
    ));
    assert_eq!(
        r.warnings.iter().filter(|w| w.path == key).count(),
        2,
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_working_directory_under_the_config_files_directory_is_warned_about() {
    // The config is /srv/app/procman.yaml: `data` was resolved to
    // /srv/app/data, a path of this host.
    let r = rendered(
        "  - {id: a, management: {control: {executable: /bin/a, working_directory: data}}}\n",
    );
    assert!(stream(&r).contains("workingDir: /srv/app/data\n"));
    assert!(warned(
        &r,
        &format!("{CONTROL}.working_directory"),
        "`/srv/app/data` is under the config file's directory, `/srv/app`"
    ));
    let r = rendered(
        "  - {id: a, management: {control: {executable: /bin/a, working_directory: /opt/a}}}\n",
    );
    assert!(stream(&r).contains("workingDir: /opt/a\n"));
    assert!(no_directory_warning(&r), "{:?}", r.warnings);
    // A config at the root names no directory of its own.
    let c = match procman_core::config::load_str(
        "managed_processes:\n  - {id: a, management: {control: {executable: /bin/a, working_directory: /opt/a}}}\n",
        std::path::Path::new("/procman.yaml"),
        &|_| None,
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let r = render(
        &c,
        &Options {
            name: "app".into(),
            image: Some("i".into()),
        },
    )
    .expect("rendered");
    assert!(no_directory_warning(&r), "{:?}", r.warnings);
}

fn no_directory_warning(r: &Rendered) -> bool {
    r.warnings
        .iter()
        .all(|w| !w.path.ends_with("working_directory"))
}

#[test]
fn url_credentials_are_percent_decoded_into_the_authorization_header() {
    let r = rendered(concat!(
        "  - id: a\n    management:\n      control: {executable: /bin/a}\n",
        "      health_check: {http_endpoint: \"http://us%3Aer:p%40ss@localhost:8080/health\"}\n",
    ));
    // base64 of `us:er:p@ss`.
    let header = "httpHeaders:\n                - name: Authorization\n                  value: \"Basic dXM6ZXI6cEBzcw==\"\n";
    assert!(stream(&r).contains(header), "{}", stream(&r));
    let r = render(
        &config(concat!(
            "  - id: a\n    management:\n      control: {executable: /bin/a}\n",
            "      health_check: {http_endpoint: \"http://admin@localhost:8080/\"}\n",
        )),
        &Options {
            name: "app".into(),
            image: Some("i".into()),
        },
    )
    .expect("rendered");
    // `admin:`, a user without a password.
    assert!(
        stream(&r).contains("value: \"Basic YWRtaW46\"\n"),
        "{}",
        stream(&r)
    );
}
