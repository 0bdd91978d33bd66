//! The stop order `depends_on` gives, and the words of a refused start,
//! on configs without processes running.

use std::path::Path;

use super::{down_message, stop_levels, upstream_of};
use crate::config::{self, Config, DependencyCondition};

/// A config of `(id, depends_on)` entries (each `/bin/true`, never run).
fn config(entries: &[(&str, &[&str])]) -> Config {
    let mut yaml = String::from("process_manager:\n  port: 0\nmanaged_processes:\n");
    for (id, deps) in entries {
        yaml.push_str(&format!(
            "  - id: {id}\n    management:\n      control:\n        executable: /bin/true\n"
        ));
        if !deps.is_empty() {
            yaml.push_str(&format!("    depends_on: [{}]\n", deps.join(", ")));
        }
    }
    config::load_str(&yaml, Path::new("/tmp/procman.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn levels(c: &Config, ids: &[&str]) -> Vec<Vec<String>> {
    stop_levels(c, ids)
}

#[test]
fn a_chain_stops_from_its_end() {
    let c = config(&[("a", &[]), ("b", &["a"]), ("c", &["b"])]);
    assert_eq!(levels(&c, &["a", "b", "c"]), [["c"], ["b"], ["a"]]);
    // Only what is listed counts: without b, nothing orders a and c.
    assert_eq!(levels(&c, &["a", "c"]), [["a", "c"]]);
}

#[test]
fn a_diamond_stops_its_top_first_and_its_base_last() {
    // top needs left and right, which both need base; lone needs nothing.
    let c = config(&[
        ("base", &[]),
        ("left", &["base"]),
        ("right", &["base"]),
        ("top", &["left", "right"]),
        ("lone", &[]),
    ]);
    let got = levels(&c, &["base", "left", "right", "top", "lone"]);
    assert_eq!(
        got,
        vec![vec!["top", "lone"], vec!["left", "right"], vec!["base"]]
    );
}

#[test]
fn a_process_waits_for_every_dependent_before_it_stops() {
    // a is needed by b (level 1) and by c directly (level 0): it goes
    // after b, not after c alone.
    let c = config(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b"])]);
    assert_eq!(levels(&c, &["a", "b", "c"]), [["c"], ["b"], ["a"]]);
}

#[test]
fn upstream_is_transitive_nearest_first_and_once_each() {
    let c = config(&[
        ("base", &[]),
        ("left", &["base"]),
        ("right", &["base"]),
        ("top", &["left", "right"]),
    ]);
    let got: Vec<&str> = upstream_of(&c, "top")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(got, ["left", "right", "base"]);
    // base is needed twice, each time as `started`.
    let base = upstream_of(&c, "top")
        .into_iter()
        .find(|(id, _)| *id == "base");
    assert_eq!(
        base.map(|(_, c)| c),
        Some(vec![
            DependencyCondition::Started,
            DependencyCondition::Started
        ])
    );
    assert!(upstream_of(&c, "base").is_empty());
}

#[test]
fn a_refused_start_names_what_is_down_and_how_to_go_on() {
    let one = [("db".to_string(), "stopped".to_string())];
    assert_eq!(
        down_message("api", &one),
        "cannot start api: it depends on db, which is stopped (start it first, or use --with-deps)"
    );
    let two = [
        ("db".to_string(), "stopped".to_string()),
        ("migrate".to_string(), "failed".to_string()),
    ];
    assert_eq!(
        down_message("api", &two),
        "cannot start api: it depends on db, which is stopped, and on migrate, which is failed \
         (start them first, or use --with-deps)"
    );
}
