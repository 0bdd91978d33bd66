use super::yaml::{document, quoted, string, Map, Node};

#[test]
fn words_and_paths_stay_bare() {
    for s in [
        "db",
        "/usr/bin/env",
        "registry.example/shop:2.0",
        "app.kubernetes.io/name",
        "--port",
        "-c",
        "http.server",
        "Yesterday",
    ] {
        assert_eq!(string(s), s);
    }
}

#[test]
fn what_a_reader_could_take_for_something_else_is_quoted() {
    for s in [
        "",
        "yes",
        "No",
        "ON",
        "off",
        "y",
        "n",
        "true",
        "False",
        "null",
        "~",
        "0123",
        "1.0",
        "8080",
        "-1",
        "+1",
        "1e3",
        "0x1F",
        "0o17",
        "0b101",
        "1_000",
        "2001-12-14",
        ".inf",
        "-.inf",
        ".nan",
        "1:20",
        "-",
        "--",
        "a:",
        "*",
        "&a",
        "!tag",
        "%x",
        "@x",
        "`x",
        "#x",
        "|",
        ">",
        "?",
        "[a]",
        "{a}",
        "a,b",
        "<<",
        "=",
    ] {
        assert_eq!(string(s), format!("\"{s}\""), "{s:?}");
    }
}

#[test]
fn quoting_escapes_by_yaml_rules() {
    // Spaces and quotes.
    assert_eq!(string("a b"), "\"a b\"");
    assert_eq!(string(" lead"), "\" lead\"");
    assert_eq!(quoted("it's \"x\""), "\"it's \\\"x\\\"\"");
    // `$` and `%` need nothing in YAML (the kubelet's `$` is `verbatim`'s).
    assert_eq!(string("$HOME 100%"), "\"$HOME 100%\"");
    // Backslashes.
    assert_eq!(quoted("C:\\dir\\"), "\"C:\\\\dir\\\\\"");
    // Newlines, tabs, carriage returns, other controls.
    assert_eq!(quoted("a\nb\tc\rd"), "\"a\\nb\\tc\\rd\"");
    assert_eq!(quoted("\u{1}\u{1b}\u{7f}"), "\"\\u0001\\u001b\\u007f\"");
    // Non-ASCII stays as it is, but for line breaks to YAML 1.1 and what
    // YAML does not print.
    assert_eq!(string("héllo 日本"), "\"héllo 日本\"");
    assert_eq!(
        quoted("\u{85}\u{2028}\u{2029}\u{feff}\u{fffe}"),
        "\"\\u0085\\u2028\\u2029\\ufeff\\ufffe\""
    );
    assert_eq!(quoted("😀"), "\"😀\"");
}

#[test]
fn documents_are_block_style_with_indented_lists() {
    let node: Node = Map::new()
        .with("kind", "Pod")
        .with("empty", Node::Seq(Vec::new()))
        .with("none", Map::new())
        .with(
            "items",
            Node::Seq(vec![
                Map::new().with("name", "a").with("port", 80_u16).into(),
                Node::Seq(vec!["x".into(), true.into()]),
                "yes".into(),
            ]),
        )
        .with(
            "nested",
            Map::new().with("deep", Map::new().with("k", -3_i64)),
        )
        .into();
    let expected = "---\nkind: Pod\nempty: []\nnone: {}\nitems:\n  - name: a\n    port: 80\n  -\n    - x\n    - true\n  - \"yes\"\nnested:\n  deep:\n    k: -3\n";
    assert_eq!(document(&node), expected);
}
