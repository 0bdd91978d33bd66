//! A small HCL2 writer: blocks, attributes and comments, laid out as
//! `nomad fmt` lays them out (two-space indents, the `=` of consecutive
//! one-line attributes aligned, a blank line around nested blocks), and
//! strings quoted by HCL's own rules.

use std::fmt::Write as _;

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string from the config: every character is literal, so `${` and
    /// `%{` (HCL's template sequences) are escaped.
    Str(String),
    /// A string whose `${...}` sequences are meant as Nomad's runtime
    /// interpolation (`${NOMAD_PORT_api}`): only quotes, backslashes and
    /// control characters are escaped. Never built from config text.
    Interpolated(String),
    Int(i64),
    Bool(bool),
    List(Vec<Value>),
    /// An object, one entry a line, keys quoted (`env = { "A.B" = "1" }`).
    Map(Vec<(String, Value)>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
        Value::List(items.iter().map(|s| Value::str(s.as_ref())).collect())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Attr(String, Value),
    Block(Block),
    Comment(String),
}

/// A block: `type "label" { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    kind: String,
    labels: Vec<String>,
    items: Vec<Item>,
}

impl Block {
    pub fn new(kind: &str, labels: &[&str]) -> Block {
        Block {
            kind: kind.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            items: Vec::new(),
        }
    }

    pub fn attr(&mut self, key: &str, value: Value) -> &mut Block {
        self.items.push(Item::Attr(key.to_string(), value));
        self
    }

    pub fn str(&mut self, key: &str, value: impl Into<String>) -> &mut Block {
        self.attr(key, Value::Str(value.into()))
    }

    pub fn int(&mut self, key: &str, value: impl Into<i64>) -> &mut Block {
        self.attr(key, Value::Int(value.into()))
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Block {
        self.attr(key, Value::Bool(value))
    }

    pub fn block(&mut self, block: Block) -> &mut Block {
        self.items.push(Item::Block(block));
        self
    }

    /// A `#` comment line before what comes next (one item per line of
    /// `text`).
    pub fn comment(&mut self, text: &str) -> &mut Block {
        for line in text.lines() {
            self.items.push(Item::Comment(line.to_string()));
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The block as text, ending with a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        out.push_str(&pad);
        out.push_str(&self.kind);
        for label in &self.labels {
            out.push(' ');
            out.push_str(&quote(label));
        }
        if self.items.is_empty() {
            out.push_str(" {}\n");
            return;
        }
        out.push_str(" {\n");
        let inner = "  ".repeat(depth + 1);
        let mut i = 0;
        while i < self.items.len() {
            let after_block = i > 0 && matches!(self.items[i - 1], Item::Block(_));
            let starts_block = matches!(self.items[i], Item::Block(_))
                || (matches!(self.items[i], Item::Comment(_)) && next_is_block(&self.items[i..]));
            let after_comment = i > 0 && matches!(self.items[i - 1], Item::Comment(_));
            if i > 0 && !after_comment && (after_block || starts_block) {
                out.push('\n');
            }
            match &self.items[i] {
                Item::Block(b) => {
                    b.write(out, depth + 1);
                    i += 1;
                }
                Item::Comment(text) => {
                    let _ = writeln!(out, "{inner}# {text}");
                    i += 1;
                }
                Item::Attr(..) => {
                    // A run of attributes: their `=` aligned.
                    let run: Vec<(&String, &Value)> = self.items[i..]
                        .iter()
                        .map_while(|item| match item {
                            Item::Attr(k, v) => Some((k, v)),
                            _ => None,
                        })
                        .collect();
                    let width = run.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                    for (key, value) in &run {
                        let _ = write!(out, "{inner}{key:width$} = ");
                        write_value(out, value, depth + 1);
                        out.push('\n');
                    }
                    i += run.len();
                }
            }
        }
        out.push_str(&pad);
        out.push_str("}\n");
    }
}

fn next_is_block(items: &[Item]) -> bool {
    items
        .iter()
        .find(|item| !matches!(item, Item::Comment(_)))
        .is_some_and(|item| matches!(item, Item::Block(_)))
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Str(s) => out.push_str(&quote(s)),
        Value::Interpolated(s) => out.push_str(&quote_interpolated(s)),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::List(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, depth);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push_str("{\n");
            let inner = "  ".repeat(depth + 1);
            let keys: Vec<String> = entries.iter().map(|(k, _)| quote(k)).collect();
            let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
            for (key, (_, v)) in keys.iter().zip(entries) {
                let fill = width - key.chars().count();
                let _ = write!(out, "{inner}{key}{} = ", " ".repeat(fill));
                write_value(out, v, depth + 1);
                out.push('\n');
            }
            out.push_str(&"  ".repeat(depth));
            out.push('}');
        }
    }
}

/// `s` as an HCL quoted string whose every character is literal: `"` and
/// `\` escaped, newline, carriage return and tab as `\n`, `\r`, `\t`,
/// other control characters as `\uNNNN`, and the template sequences `${`
/// and `%{` doubled (`$${`, `%%{`). Anything else, non-ASCII included,
/// is written as it is (HCL files are UTF-8).
pub fn quote(s: &str) -> String {
    escape(s, true)
}

/// Like [`quote`], but `${...}` and `%{...}` are left to HCL and Nomad.
fn quote_interpolated(s: &str) -> String {
    escape(s, false)
}

fn escape(s: &str, literal_templates: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if literal_templates && chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `key` can be written bare as an attribute name (an HCL
/// identifier, ASCII here, and not a word HCL gives a meaning).
pub fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !matches!(
            key,
            "true" | "false" | "null" | "for" | "in" | "if" | "else" | "endif" | "endfor"
        )
}

/// Whether Nomad would replace part of `s` when the task starts: it
/// interpolates `${NAME}` (letters, digits, `_`, `-`, `.`) in a task's
/// config, env and service strings with the variable of that name, and
/// has no way to escape it.
pub fn runtime_interpolated(s: &str) -> bool {
    s.match_indices("${").any(|(at, _)| {
        let rest = &s[at + 2..];
        match rest.find('}') {
            Some(end) if end > 0 => rest[..end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
            _ => false,
        }
    })
}
