//! Which state directory a manager uses: config, then PROCMAN_STATE_DIR,
//! then one directory per config file; never a guess in /tmp.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::*;

fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| OsString::from(v))
    }
}

/// Two config files in their own directories of a temp dir.
fn two_configs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("procman.yaml"), "").unwrap();
    }
    (t, a.join("procman.yaml"), b.join("procman.yaml"))
}

#[test]
fn the_config_wins_then_the_environment() {
    let cfg = Path::new("/srv/app/procman.yaml");
    let env = [("PROCMAN_STATE_DIR", "/env/state"), ("HOME", "/home/u")];
    let configured = Some(Path::new("/cfg/state"));
    let got = dir_from(configured, cfg, &env_of(&env), false).unwrap();
    assert_eq!(got, Path::new("/cfg/state"));
    let got = dir_from(None, cfg, &env_of(&env), true).unwrap();
    assert_eq!(got, Path::new("/env/state"));
}

#[test]
fn the_default_is_one_directory_per_config_file() {
    let (_t, a, b) = two_configs();
    let env = [("HOME", "/home/u")];
    let da = dir_from(None, &a, &env_of(&env), false).unwrap();
    let db = dir_from(None, &b, &env_of(&env), false).unwrap();
    assert_ne!(da, db, "two projects never share a state directory");
    for d in [&da, &db] {
        assert_eq!(
            d.parent(),
            Some(Path::new("/home/u/.local/state/hsu-procman"))
        );
        let name = d.file_name().unwrap().to_str().unwrap();
        let hash = name.strip_prefix("procman-").expect(name);
        assert!(
            hash.len() == 8 && hash.bytes().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
    }
    // Stable: the same file gives the same directory, through any path.
    let dotted = a.parent().unwrap().join("../a/procman.yaml");
    assert_eq!(dir_from(None, &dotted, &env_of(&env), false).unwrap(), da);
}

#[test]
fn root_uses_var_lib_and_others_their_xdg_state_home() {
    let (_t, a, _) = two_configs();
    let name = default_dir(&a);
    let env = [("XDG_STATE_HOME", "/x/state"), ("HOME", "/home/u")];
    let as_root = dir_from(None, &a, &env_of(&env), true).unwrap();
    assert_eq!(as_root, Path::new("/var/lib/hsu-procman").join(&name));
    let as_user = dir_from(None, &a, &env_of(&env), false).unwrap();
    assert_eq!(as_user, Path::new("/x/state/hsu-procman").join(&name));
    // A relative XDG_STATE_HOME is invalid (XDG): HOME decides.
    let env = [("XDG_STATE_HOME", "rel"), ("HOME", "/home/u")];
    let got = dir_from(None, &a, &env_of(&env), false).unwrap();
    assert_eq!(
        got,
        Path::new("/home/u/.local/state/hsu-procman").join(&name)
    );
}

#[test]
fn without_a_home_it_refuses_rather_than_guess_a_tmp_path() {
    let err = dir_from(None, Path::new("/a/procman.yaml"), &env_of(&[]), false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("state_dir") && msg.contains("PROCMAN_STATE_DIR"),
        "{msg}"
    );
}
