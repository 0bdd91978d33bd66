//! The key path that names each value, and the views of the tree the
//! walk reads through: [`Item`] (a value and its key path) and
//! [`Section`] (a mapping whose keys have been checked).
//!
//! The tree (built in `document`, kept in `tree`) holds every scalar as
//! the string written, with its position: that is what we want, the text
//! is `${VAR}`-expanded first and parsed by type later, and every node
//! can be pointed at.

use super::error::cut;
use super::tree::{Mapping, Node, Scalar};

/// A 1-based position in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pos {
    pub line: usize,
    pub column: usize,
}

/// `parent.key`, or `key` at the top level; a long key is cut, as
/// everything a message echoes.
pub(super) fn join(parent: &str, key: &str) -> String {
    let key = cut(key);
    if parent.is_empty() {
        return key.into_owned();
    }
    let mut path = String::with_capacity(parent.len() + 1 + key.len());
    path.push_str(parent);
    path.push('.');
    path.push_str(&key);
    path
}

/// One value in the tree: the node, its key path and where its key is
/// (errors about a missing or empty value point at the key).
#[derive(Debug, Clone)]
pub(super) struct Item<'n> {
    pub node: Node<'n>,
    pub path: String,
    pub key_pos: Pos,
}

impl<'n> Item<'n> {
    /// The top of the file.
    pub(super) fn root(node: Node<'n>) -> Item<'n> {
        Item {
            node,
            path: String::new(),
            key_pos: node.pos(),
        }
    }

    /// The value of `key` in a mapping.
    fn entry(parent: &str, key: Scalar<'n>, node: Node<'n>) -> Item<'n> {
        Item {
            node,
            path: join(parent, key.as_str()),
            key_pos: key.pos(),
        }
    }

    /// Where the value starts; the key's position for an empty value.
    pub(super) fn pos(&self) -> Pos {
        if self.is_null() {
            self.key_pos
        } else {
            self.node.pos()
        }
    }

    /// `~`, `null` or nothing at all, unquoted.
    pub(super) fn is_null(&self) -> bool {
        self.plain_text()
            .is_some_and(|t| matches!(t, "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A plain (unquoted) scalar's text: `file: false` is a bool where
    /// `file: "false"` would be a path.
    pub(super) fn plain_text(&self) -> Option<&'n str> {
        self.node
            .as_scalar()
            .filter(|s| s.may_coerce())
            .map(Scalar::as_str)
    }

    /// What the value is, for "expected X, found Y".
    pub(super) fn found(&self) -> String {
        if self.is_null() {
            return "an empty value".to_string();
        }
        match (self.node.as_scalar(), self.node.as_mapping()) {
            (Some(s), _) => format!("`{}`", cut(s.as_str())),
            (None, Some(_)) => "a mapping".to_string(),
            (None, None) => "a list".to_string(),
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
                    key_pos: node.pos(),
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
    pub map: Option<Mapping<'n>>,
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
    pub(super) fn written(&self, key: &str) -> Option<Item<'n>> {
        let (k, node) = self.map?.get_key_value(key)?;
        Some(Item::entry(&self.path, k, node))
    }

    /// Whether `key` is written, even with an empty value.
    pub(super) fn has(&self, key: &str) -> bool {
        self.map.is_some_and(|map| map.contains_key(key))
    }

    /// Every key with its value, in file order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (Scalar<'n>, Item<'n>)> + '_ {
        self.map
            .into_iter()
            .flat_map(|map| map.iter())
            .map(|(k, node)| (k, Item::entry(&self.path, k, node)))
    }

    pub(super) fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }
}
