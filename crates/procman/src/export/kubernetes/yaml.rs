//! The YAML the manifests are written in: a tree of [`Node`]s and a
//! block-style writer whose strings read back as the same strings.
//!
//! The workspace's YAML crate (yaml-rust2) has an emitter, but it writes
//! some strings bare that other readers take for something else:
//! `2001-12-14` (a timestamp to YAML 1.1 readers such as PyYAML and the
//! `sigs.k8s.io/yaml` that kubectl uses), `1_000` and `0b101` (YAML 1.1
//! integers), `0o17` (a YAML 1.2 integer), and it leaves U+2028 and
//! U+0085 raw (line breaks to YAML 1.1). So strings are written bare only
//! when they are plainly words or paths, and double-quoted otherwise.

use std::fmt::Write as _;

/// One value of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Str(String),
    Int(i64),
    Bool(bool),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl From<&str> for Node {
    fn from(s: &str) -> Node {
        Node::Str(s.to_string())
    }
}

impl From<String> for Node {
    fn from(s: String) -> Node {
        Node::Str(s)
    }
}

impl From<&String> for Node {
    fn from(s: &String) -> Node {
        Node::Str(s.clone())
    }
}

impl From<i64> for Node {
    fn from(n: i64) -> Node {
        Node::Int(n)
    }
}

impl From<u16> for Node {
    fn from(n: u16) -> Node {
        Node::Int(i64::from(n))
    }
}

impl From<bool> for Node {
    fn from(b: bool) -> Node {
        Node::Bool(b)
    }
}

impl From<Map> for Node {
    fn from(m: Map) -> Node {
        Node::Map(m.0)
    }
}

impl From<Vec<Node>> for Node {
    fn from(items: Vec<Node>) -> Node {
        Node::Seq(items)
    }
}

/// A list of strings.
pub fn strings<S: AsRef<str>>(items: &[S]) -> Node {
    Node::Seq(items.iter().map(|s| Node::from(s.as_ref())).collect())
}

/// A mapping under construction, keys in the order added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map(Vec<(String, Node)>);

impl Map {
    pub fn new() -> Map {
        Map(Vec::new())
    }

    /// With `key: value` added.
    pub fn with(mut self, key: &str, value: impl Into<Node>) -> Map {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// With `key: value` added when there is a value.
    pub fn with_some(self, key: &str, value: Option<impl Into<Node>>) -> Map {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One document: `---`, then the node (a mapping) in block style.
pub fn document(root: &Node) -> String {
    let mut out = String::from("---\n");
    match root {
        Node::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0, false),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

/// A scalar or an empty collection, as written after `key: ` or `- `.
/// `None` for a collection with items (written on the lines below).
fn scalar(node: &Node) -> Option<String> {
    match node {
        Node::Str(s) => Some(string(s)),
        Node::Int(n) => Some(n.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        Node::Seq(items) if items.is_empty() => Some("[]".to_string()),
        Node::Map(entries) if entries.is_empty() => Some("{}".to_string()),
        Node::Seq(_) | Node::Map(_) => None,
    }
}

fn inline(node: &Node) -> String {
    scalar(node).unwrap_or_default()
}

/// The entries of a mapping at `indent`; the first one goes on the
/// current line when `after_dash` (a list item that is a mapping).
fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize, after_dash: bool) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 || !after_dash {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(key));
        out.push(':');
        write_value(out, value, indent + 2);
    }
}

/// The items of a list, each `- ` at `indent`.
fn write_seq(out: &mut String, items: &[Node], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Node::Map(entries) if !entries.is_empty() => {
                out.push(' ');
                write_map(out, entries, indent + 2, true);
            }
            other => write_value(out, other, indent + 2),
        }
    }
}

/// What follows `key:` or `-`: ` scalar` on the same line, or the
/// collection's lines indented by `child`.
fn write_value(out: &mut String, value: &Node, child: usize) {
    if let Some(text) = scalar(value) {
        out.push(' ');
        out.push_str(&text);
        out.push('\n');
        return;
    }
    out.push('\n');
    match value {
        Node::Map(entries) => write_map(out, entries, child, false),
        Node::Seq(items) => write_seq(out, items, child),
        Node::Str(_) | Node::Int(_) | Node::Bool(_) => {}
    }
}

/// A string as YAML: bare when every reader takes it for that same
/// string, else double-quoted.
pub fn string(s: &str) -> String {
    if is_plain(s) {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// Words YAML 1.1 or 1.2 readers take for booleans or null, in any case.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// Whether `s` can be written bare: it starts with a letter or `/`, or
/// with dashes then a letter (`--port`; no number, date, `.inf` or
/// indicator does), holds only letters, digits and `._/-:`, does not end
/// with `:` (`a:` would start a mapping), and is no boolean or null word.
fn is_plain(s: &str) -> bool {
    let Some(first) = s.trim_start_matches('-').chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || (first == '/' && !s.starts_with('-')))
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | ':'))
        && !s.ends_with(':')
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

/// `s` double-quoted: `"` and `\` escaped, tab, line feed and carriage
/// return as `\t`, `\n`, `\r`, every other character YAML does not print
/// (C0 and C1 controls, DEL, U+FEFF, U+FFFE, U+FFFF), and U+2028/U+2029
/// (line breaks to YAML 1.1 readers), as `\uXXXX`. Other non-ASCII text is
/// written as it is (UTF-8).
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            other => out.push(other),
        }
    }
    out.push('"');
    out
}
