use std::ffi::OsString;
use std::path::Path;

use super::*;

fn args() -> ManagerArgs {
    ManagerArgs {
        config: None,
        state_dir: None,
        url: None,
        token: None,
        token_file: None,
        timeout: None,
    }
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

fn nothing_exists(_: &Path) -> bool {
    false
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("procman-cli-")
        .tempdir()
        .expect("tempdir")
}

/// A valid config in `dir` whose state directory is `dir/state`.
fn config_in(dir: &Path) -> PathBuf {
    let file = dir.join("app.yaml");
    let yaml = format!(
        "process_manager:\n  port: 0\n  state_dir: \"{}\"\nmanaged_processes:\n  - id: \"a\"\n    management:\n      control:\n        executable: \"true\"\n",
        dir.join("state").display()
    );
    std::fs::write(&file, yaml).expect("write config");
    file
}

#[test]
fn a_state_dir_given_is_used_as_it_is() {
    let a = ManagerArgs {
        state_dir: Some("/x/y".into()),
        config: Some("/does/not/matter.yaml".into()),
        ..args()
    };
    let env = |_: &str| Some(OsString::from("/from/env"));
    let (found, config) = find(&a, &env, &nothing_exists).expect("found");
    assert_eq!(found.state_dir, Path::new("/x/y"));
    assert_eq!(found.for_what, "state directory /x/y");
    assert!(config.is_none());
}

#[test]
fn the_config_names_its_state_dir_as_the_manager_reads_it() {
    let dir = tempdir();
    let file = config_in(dir.path());
    let a = ManagerArgs {
        config: Some(file.clone()),
        ..args()
    };
    let (found, config) = find(&a, &no_env, &nothing_exists).expect("found");
    assert_eq!(found.state_dir, dir.path().join("state"));
    assert_eq!(found.for_what, file.display().to_string());
    assert_eq!(config.expect("config").processes.len(), 1);
}

#[test]
fn without_any_config_the_environment_names_the_state_dir() {
    let env = |name: &str| (name == "PROCMAN_STATE_DIR").then(|| OsString::from("/run/pm"));
    let (found, config) = find(&args(), &env, &nothing_exists).expect("found");
    assert_eq!(found.state_dir, Path::new("/run/pm"));
    assert!(
        found.for_what.contains("PROCMAN_STATE_DIR"),
        "{}",
        found.for_what
    );
    assert!(config.is_none());
}

#[test]
fn without_config_or_state_dir_it_is_a_usage_error_that_says_what_to_pass() {
    let empty = |_: &str| Some(OsString::new());
    for env in [&no_env as &dyn Fn(&str) -> Option<OsString>, &empty] {
        match find(&args(), env, &nothing_exists) {
            Err(Failure::Config(msg)) => {
                assert!(
                    msg.contains("-c FILE") && msg.contains("--state-dir"),
                    "{msg}"
                );
            }
            other => panic!("{:?}", other.map(|(f, _)| f)),
        }
    }
}

#[test]
fn an_invalid_config_is_a_config_error() {
    let dir = tempdir();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "process_manager: [\n").expect("write");
    let a = ManagerArgs {
        config: Some(file),
        ..args()
    };
    assert!(matches!(
        find(&a, &no_env, &nothing_exists),
        Err(Failure::Config(_))
    ));
}

/// Runs `f` on a runtime of its own (the client is async).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn nobody_on_the_socket_is_exit_3_naming_the_config_and_the_socket() {
    let dir = tempdir();
    let file = config_in(dir.path());
    let located = locate(&ManagerArgs {
        config: Some(file.clone()),
        ..args()
    })
    .map_err(|_| "locate failed")
    .expect("located");
    let socket = dir.path().join("state").join("procman.sock");
    let e = block_on(located.client.processes()).expect_err("nobody there");
    match located.failure("list the processes", e) {
        Failure::NoManager(msg) => assert_eq!(
            msg,
            format!(
                "no manager running for {} (looked for {})",
                file.display(),
                socket.display()
            )
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_url_takes_its_token_from_the_state_dir_file_and_never_shows_it() {
    let dir = tempdir();
    std::fs::write(dir.path().join("api-token"), "t0ken-in-file\n").expect("write");
    let located = locate(&ManagerArgs {
        url: Some("http://127.0.0.1:1".into()),
        state_dir: Some(dir.path().to_path_buf()),
        ..args()
    })
    .map_err(|_| "locate failed")
    .expect("located");
    assert_eq!(located.missing, "no manager answers at http://127.0.0.1:1");
    assert!(!format!("{:?}", located.client).contains("t0ken"));
    let given = ManagerArgs {
        token: Some(secret("t0ken-given").expect("secret")),
        ..args()
    };
    assert!(!format!("{given:?}").contains("t0ken"), "{given:?}");
    let missing = locate(&ManagerArgs {
        url: Some("http://127.0.0.1:1".into()),
        state_dir: Some(dir.path().join("nowhere")),
        ..args()
    });
    match missing {
        Err(Failure::Config(msg)) => assert!(msg.contains("--token"), "{msg}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a missing token file was accepted"),
    }
}
