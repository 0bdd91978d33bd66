//! The parsed file as one compact tree: every node in one vector, the text
//! of every scalar in one string, and the children of every collection in
//! one vector of indices (a list's elements; a mapping's keys and values,
//! in turn).
//!
//! A node costs 16 bytes and no allocation of its own: its text is in the
//! shared string, its children's indices in the shared vector. A config
//! of 10,000 processes has some 700,000 nodes, which took 120 MB as a
//! tree of `marked-yaml` nodes (each with its own string and span, each
//! mapping with its own hash table) and take under 20 MB here.
//!
//! A mapping is searched by scanning its keys: the walk looks up only keys
//! it knows, a fixed number per mapping, so no mapping is scanned more than
//! that many times, however many keys it has. The builder finds duplicate
//! keys of a large mapping with a hash set of its own (see `document`).
//!
//! Built by `document`, read through the views [`Node`], [`Scalar`],
//! [`Mapping`] and [`Sequence`], which borrow the tree.

use std::fmt;

use super::node::Pos;

/// A parsed file. Nodes are named by their index ([`Id`]).
#[derive(Default)]
pub(super) struct Tree {
    /// The text of every scalar, one after another.
    text: String,
    nodes: Vec<Raw>,
    /// The children of every collection, each collection's together.
    links: Vec<Id>,
    root: Id,
}

/// The index of a node in its tree.
pub(super) type Id = u32;

/// More than 32-bit indices reach (4 GiB of text, or a scalar or list of
/// more than 1 GiB): refused, where a file is read at most 64 MiB.
#[derive(Debug)]
pub(super) struct TooLarge;

/// A node: 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Raw {
    /// Where the parser saw it (1-based).
    line: u32,
    column: u32,
    /// A scalar's text (a range of `text`), or a collection's children (a
    /// range of `links`): where it starts.
    start: u32,
    /// Its [`Kind`] in the top two bits, its length (bytes, elements or
    /// entries) below.
    tag: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An unquoted scalar: it may be read as a number, a bool or null.
    Plain,
    /// A quoted (or block) scalar: always a string.
    Quoted,
    Mapping,
    Sequence,
}

const KIND_SHIFT: u32 = 30;
const MAX_LEN: usize = (1 << KIND_SHIFT) - 1;

impl Raw {
    fn kind(self) -> Kind {
        match self.tag >> KIND_SHIFT {
            0 => Kind::Plain,
            1 => Kind::Quoted,
            2 => Kind::Mapping,
            _ => Kind::Sequence,
        }
    }

    fn len(self) -> usize {
        (self.tag as usize) & MAX_LEN
    }

    fn tag(kind: Kind, len: usize) -> Result<u32, TooLarge> {
        if len > MAX_LEN {
            return Err(TooLarge);
        }
        Ok((kind as u32) << KIND_SHIFT | len as u32)
    }
}

fn index(n: usize) -> Result<u32, TooLarge> {
    u32::try_from(n).map_err(|_| TooLarge)
}

/// A line or column as stored: a position past 4 billion is shown as the
/// largest one (no file that large is read).
fn narrow(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Tree {
    /// Adds a scalar: `plain` for one written without quotes.
    pub(super) fn scalar(&mut self, pos: Pos, text: &str, plain: bool) -> Result<Id, TooLarge> {
        let start = index(self.text.len())?;
        index(self.text.len() + text.len())?;
        let kind = if plain { Kind::Plain } else { Kind::Quoted };
        let tag = Raw::tag(kind, text.len())?;
        self.text.push_str(text);
        self.push(pos, start, tag)
    }

    /// Adds a collection, empty until [`Tree::close`] gives its children.
    pub(super) fn open(&mut self, pos: Pos, mapping: bool) -> Result<Id, TooLarge> {
        let kind = if mapping {
            Kind::Mapping
        } else {
            Kind::Sequence
        };
        self.push(pos, 0, Raw::tag(kind, 0)?)
    }

    /// Gives the collection `id` its children: elements, or keys and
    /// values in turn.
    pub(super) fn close(&mut self, id: Id, children: &[Id]) -> Result<(), TooLarge> {
        let start = index(self.links.len())?;
        index(self.links.len() + children.len())?;
        if let Some(raw) = self.nodes.get_mut(id as usize) {
            let kind = raw.kind();
            let per_child = if kind == Kind::Mapping { 2 } else { 1 };
            raw.tag = Raw::tag(kind, children.len() / per_child)?;
            raw.start = start;
        }
        self.links.extend_from_slice(children);
        Ok(())
    }

    /// Ends the build: `id` is the top of the file, and the room kept for
    /// more nodes is given back.
    pub(super) fn finish(&mut self, root: Id) {
        self.root = root;
        self.text.shrink_to_fit();
        self.nodes.shrink_to_fit();
        self.links.shrink_to_fit();
    }

    /// The top of the file.
    pub(super) fn root(&self) -> Node<'_> {
        self.node(self.root)
    }

    pub(super) fn node(&self, id: Id) -> Node<'_> {
        Node { tree: self, id }
    }

    fn push(&mut self, pos: Pos, start: u32, tag: u32) -> Result<Id, TooLarge> {
        let id = index(self.nodes.len())?;
        self.nodes.push(Raw {
            line: narrow(pos.line),
            column: narrow(pos.column),
            start,
            tag,
        });
        Ok(id)
    }

    fn raw(&self, id: Id) -> Raw {
        // An empty plain scalar at 1:1 for an id not in the tree, which
        // the builder never hands out.
        self.nodes.get(id as usize).copied().unwrap_or(Raw {
            line: 1,
            column: 1,
            start: 0,
            tag: 0,
        })
    }

    fn links(&self, raw: Raw, per_child: usize) -> &[Id] {
        let start = raw.start as usize;
        self.links
            .get(start..start + raw.len() * per_child)
            .unwrap_or(&[])
    }
}

/// One node of a [`Tree`].
#[derive(Clone, Copy)]
pub(super) struct Node<'t> {
    tree: &'t Tree,
    id: Id,
}

impl<'t> Node<'t> {
    fn raw(self) -> Raw {
        self.tree.raw(self.id)
    }

    /// Where the parser saw the node.
    fn mark(self) -> Pos {
        let raw = self.raw();
        Pos {
            line: raw.line as usize,
            column: raw.column as usize,
        }
    }

    /// Where the node starts. A block mapping's own mark is where the
    /// parser noticed it (after its first key), so a mapping starts at its
    /// first key.
    pub(super) fn pos(self) -> Pos {
        match self.as_mapping().and_then(|m| m.keys().next()) {
            Some(first) => first.pos(),
            None => self.mark(),
        }
    }

    pub(super) fn as_scalar(self) -> Option<Scalar<'t>> {
        matches!(self.raw().kind(), Kind::Plain | Kind::Quoted).then_some(Scalar(self))
    }

    pub(super) fn as_mapping(self) -> Option<Mapping<'t>> {
        (self.raw().kind() == Kind::Mapping).then_some(Mapping(self))
    }

    pub(super) fn as_sequence(self) -> Option<Sequence<'t>> {
        (self.raw().kind() == Kind::Sequence).then_some(Sequence(self))
    }
}

impl fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Pos { line, column } = self.mark();
        write!(f, "{:?} at {line}:{column}", self.raw().kind())
    }
}

/// A scalar: its text as written (unexpanded), and whether it was quoted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scalar<'t>(Node<'t>);

impl<'t> Scalar<'t> {
    pub(super) fn as_str(self) -> &'t str {
        let raw = self.0.raw();
        let start = raw.start as usize;
        self.0.tree.text.get(start..start + raw.len()).unwrap_or("")
    }

    /// Written without quotes: it may be read as a number, a bool or null.
    pub(super) fn may_coerce(self) -> bool {
        self.0.raw().kind() == Kind::Plain
    }

    pub(super) fn pos(self) -> Pos {
        self.0.mark()
    }
}

/// A mapping: its keys (scalars, each once) and values, in file order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mapping<'t>(Node<'t>);

impl<'t> Mapping<'t> {
    pub(super) fn len(self) -> usize {
        self.0.raw().len()
    }

    pub(super) fn iter(self) -> impl Iterator<Item = (Scalar<'t>, Node<'t>)> {
        let tree = self.0.tree;
        tree.links(self.0.raw(), 2)
            .chunks_exact(2)
            .map(move |pair| (Scalar(tree.node(pair[0])), tree.node(pair[1])))
    }

    pub(super) fn keys(self) -> impl Iterator<Item = Scalar<'t>> {
        self.iter().map(|(key, _)| key)
    }

    /// The entry of `key`, found by a scan of the keys.
    pub(super) fn get_key_value(self, key: &str) -> Option<(Scalar<'t>, Node<'t>)> {
        self.iter().find(|(k, _)| k.as_str() == key)
    }

    pub(super) fn contains_key(self, key: &str) -> bool {
        self.keys().any(|k| k.as_str() == key)
    }
}

/// A list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sequence<'t>(Node<'t>);

impl<'t> Sequence<'t> {
    pub(super) fn iter(self) -> impl Iterator<Item = Node<'t>> {
        let tree = self.0.tree;
        tree.links(self.0.raw(), 1)
            .iter()
            .map(move |&id| tree.node(id))
    }
}
