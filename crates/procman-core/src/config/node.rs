//! The YAML tree with positions, and the key path that names each value.
//!
//! `marked-yaml` keeps every scalar as a string with its position, which is
//! what we want: the text is `${VAR}`-expanded first and parsed by type
//! later, and every node can be pointed at.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Node};

use super::error::Diagnostic;

/// A 1-based position in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of_span(span: &marked_yaml::Span) -> Pos {
        span.start().map_or(Pos { line: 1, column: 1 }, |m| Pos {
            line: m.line(),
            column: m.column(),
        })
    }

    pub(super) fn of_key(key: &MarkedScalarNode) -> Pos {
        Pos::of_span(key.span())
    }

    /// Where a node starts. A block mapping's own mark is where the parser
    /// noticed it (after its first key), so a mapping starts at its first key.
    pub(super) fn of_node(node: &Node) -> Pos {
        match node {
            Node::Mapping(map) => map
                .keys()
                .next()
                .map_or_else(|| Pos::of_span(map.span()), Pos::of_key),
            _ => Pos::of_span(node.span()),
        }
    }
}

/// Parses the text into a tree whose top level is a mapping, or says where
/// the YAML is broken. Duplicate keys are a parse error here: the loader
/// would otherwise keep only the last one, silently.
pub(super) fn parse(text: &str) -> Result<Node, Diagnostic> {
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let root = marked_yaml::parse_yaml_with_options(0, text, options).map_err(|e| {
        let at = |m: &marked_yaml::Marker, message: String| Diagnostic {
            line: m.line(),
            column: m.column(),
            path: String::new(),
            message,
        };
        match e {
            LoadError::ScanError(m, scan) => at(&m, format!("invalid YAML: {}", scan.info())),
            LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => at(
                &m,
                "the file must be a mapping with keys like process_manager and managed_processes"
                    .into(),
            ),
            LoadError::UnexpectedAnchor(m) => {
                at(&m, "YAML anchors and aliases are not supported".into())
            }
            LoadError::UnexpectedTag(m) => at(&m, "YAML tags (`!name`) are not supported".into()),
            LoadError::MappingKeyMustBeScalar(m) => {
                at(&m, "a mapping key must be a plain string".into())
            }
            LoadError::DuplicateKey(dup) => {
                let first = Pos::of_key(&dup.prev_key);
                let second = Pos::of_key(&dup.key);
                Diagnostic {
                    line: second.line,
                    column: second.column,
                    path: String::new(),
                    message: format!(
                        "duplicate key `{}` (first at line {})",
                        dup.key.as_str(),
                        first.line
                    ),
                }
            }
        }
    })?;
    // The loader reads the first document only; a second one would be
    // ignored without a word.
    match second_document(text) {
        Some(line) => Err(Diagnostic {
            line,
            column: 1,
            path: String::new(),
            message: "a second YAML document (`---`) is not supported: \
                      a config file holds one"
                .into(),
        }),
        None => Ok(root),
    }
}

/// The line of a `---` that starts a document after one with content.
/// A `---` in column 1 always ends what came before it, inside block
/// scalars too, so looking at lines is exact enough.
fn second_document(text: &str) -> Option<usize> {
    let mut content = false;
    for (n, line) in text.lines().enumerate() {
        let marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if marker && content {
            return Some(n + 1);
        }
        let t = line.trim_start();
        content |= !marker && !t.is_empty() && !t.starts_with('#') && !line.starts_with('%');
    }
    None
}

/// `parent.key`, or `key` at the top level.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// One value in the tree: the node, its key path and where its key is
/// (errors about a missing or empty value point at the key).
#[derive(Debug, Clone)]
pub(super) struct Item<'n> {
    pub node: &'n Node,
    pub path: String,
    pub key_pos: Pos,
}

impl<'n> Item<'n> {
    /// The top of the file.
    pub(super) fn root(node: &'n Node) -> Item<'n> {
        Item {
            node,
            path: String::new(),
            key_pos: Pos::of_node(node),
        }
    }

    /// Where the value starts; the key's position for an empty value.
    pub(super) fn pos(&self) -> Pos {
        if self.is_null() {
            self.key_pos
        } else {
            Pos::of_node(self.node)
        }
    }

    /// `~`, `null` or nothing at all, unquoted.
    pub(super) fn is_null(&self) -> bool {
        match self.node {
            Node::Scalar(s) => {
                s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
            }
            _ => false,
        }
    }

    /// A plain (unquoted) scalar's text: `file: false` is a bool where
    /// `file: "false"` would be a path.
    pub(super) fn plain_text(&self) -> Option<&'n str> {
        match self.node {
            Node::Scalar(s) if s.may_coerce() => Some(s.as_str()),
            _ => None,
        }
    }

    /// What the value is, for "expected X, found Y".
    pub(super) fn found(&self) -> String {
        if self.is_null() {
            return "an empty value".to_string();
        }
        match self.node {
            Node::Scalar(s) => {
                let text = s.as_str();
                match text.char_indices().nth(40) {
                    Some((cut, _)) => format!("`{}...`", &text[..cut]),
                    None => format!("`{text}`"),
                }
            }
            Node::Mapping(_) => "a mapping".to_string(),
            Node::Sequence(_) => "a list".to_string(),
        }
    }

    /// The elements of a list, each named `path[i]`; `None` for a non-list.
    pub(super) fn elements(&self) -> Option<Vec<Item<'n>>> {
        let seq = self.node.as_sequence()?;
        Some(
            seq.iter()
                .enumerate()
                .map(|(i, node)| Item {
                    node,
                    path: format!("{}[{i}]", self.path),
                    key_pos: Pos::of_node(node),
                })
                .collect(),
        )
    }
}

/// A mapping whose keys have been checked against the known ones; an
/// absent section (the key is not in the file) has no keys at all, so
/// every lookup falls back to its default.
#[derive(Debug, Clone)]
pub(super) struct Section<'n> {
    pub map: Option<&'n MarkedMappingNode>,
    pub path: String,
    /// Where to report a missing key: the key that opened this section.
    pub pos: Pos,
}

impl<'n> Section<'n> {
    /// The stand-in for `parent.key` when that key is not in the file.
    pub(super) fn absent(parent: &Section<'n>, key: &str) -> Section<'n> {
        Section {
            map: None,
            path: parent.child(key),
            pos: parent.pos,
        }
    }

    /// Whether the section is in the file.
    pub(super) fn present(&self) -> bool {
        self.map.is_some()
    }

    /// The value of `key`; `None` when it is absent or null.
    pub(super) fn get(&self, key: &str) -> Option<Item<'n>> {
        self.entries()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, item)| item)
            .filter(|item| !item.is_null())
    }

    /// Whether `key` is written, even with an empty value.
    pub(super) fn has(&self, key: &str) -> bool {
        self.entries().any(|(k, _)| k.as_str() == key)
    }

    /// Every key with its value, in file order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&'n MarkedScalarNode, Item<'n>)> + '_ {
        self.map
            .into_iter()
            .flat_map(|map| map.iter())
            .map(|(k, node)| {
                (
                    k,
                    Item {
                        node,
                        path: join(&self.path, k.as_str()),
                        key_pos: Pos::of_key(k),
                    },
                )
            })
    }

    pub(super) fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }
}
