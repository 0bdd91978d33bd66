//! The YAML tree with positions, and the key path that names each value.
//!
//! The tree (built in `document`) is made of `marked-yaml` nodes, which
//! keep every scalar as a string with its position: that is what we want,
//! the text is `${VAR}`-expanded first and parsed by type later, and every
//! node can be pointed at.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::Node;

use super::error::cut;

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

/// `parent.key`, or `key` at the top level; a long key is cut, as
/// everything a message echoes.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        cut(key).into_owned()
    } else {
        format!("{parent}.{}", cut(key))
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
            Node::Scalar(s) => format!("`{}`", cut(s.as_str())),
            Node::Mapping(_) => "a mapping".to_string(),
            Node::Sequence(_) => "a list".to_string(),
        }
    }

    /// The value at `keys` below this one (`["management", "logging",
    /// "file"]`), for checks that point back at a key after the walk;
    /// `None` when any of them is absent or empty.
    pub(super) fn at(&self, keys: &[&str]) -> Option<Item<'n>> {
        let mut item = self.clone();
        for key in keys {
            let section = Section {
                map: Some(item.node.as_mapping()?),
                path: item.path,
                pos: item.key_pos,
            };
            item = section.get(key)?;
        }
        Some(item)
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
        self.written(key).filter(|item| !item.is_null())
    }

    /// The value of `key`, even an empty one; `None` when it is absent.
    /// A lookup, not a scan: a mapping may hold a million keys.
    pub(super) fn written(&self, key: &str) -> Option<Item<'n>> {
        let (k, node) = self.map?.get_key_value(key)?;
        Some(Item {
            node,
            path: join(&self.path, k.as_str()),
            key_pos: Pos::of_key(k),
        })
    }

    /// Whether `key` is written, even with an empty value.
    pub(super) fn has(&self, key: &str) -> bool {
        self.map.is_some_and(|map| map.contains_key(key))
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
