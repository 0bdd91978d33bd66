//! The YAML text → a tree with positions.
//!
//! The tree (`tree`) is built here from the parser's (`yaml-rust2`)
//! events, one at a time, so as to be safe for hostile input: a loader
//! that recurses (as `marked-yaml`'s does) lets a file nested 50,000
//! levels deep overflow the stack and abort the process, and one that
//! stops at the first duplicate key hides every other error behind it.
//! The parser itself takes a NUL byte for the end of the file. Here:
//!
//! - nesting is counted and refused past [`MAX_DEPTH`] before it is built,
//!   so nothing that walks or drops the tree can recurse deeply;
//! - a duplicate key, an anchor, an alias or a tag is reported and the
//!   tree is built on, so the walk still finds every other problem;
//! - the text itself is checked first, every problem at once (invalid
//!   UTF-8, NUL and other control characters: `text`), and only a
//!   clean text is parsed; a byte-order mark is skipped, so positions
//!   count what an editor shows.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker as YamlMarker, TScalarStyle};

use super::error::{cut, Diagnostic, Severity};
use super::node::{join, Pos};
use super::text;
use super::tree::{Id, TooLarge, Tree};

/// Deepest nesting of mappings and lists. A real config nests 6 levels at
/// most (the file, `managed_processes`, a process, `management`,
/// `health_check`, `command`), so 64 refuses nothing written by hand.
pub(super) const MAX_DEPTH: usize = 64;

/// A parsed file: the tree (a mapping), and the problems that did not stop
/// the parse (duplicate keys, anchors, tags).
pub(super) struct Document {
    pub tree: Tree,
    pub problems: Vec<Diagnostic>,
}

/// Parses the text into a tree whose top level is a mapping, or says why
/// it cannot be one (with every problem found before that).
pub(super) fn parse(text: &str) -> Result<Document, Vec<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text::controls(text)?;
    let mut builder = Builder::default();
    match builder.run(&mut Parser::new_from_str(text)) {
        Ok(()) => Ok(Document {
            tree: builder.tree,
            problems: builder.problems,
        }),
        Err(mut fatal) => {
            if fatal.message.contains("tab") {
                place_tab(text, &mut fatal);
            } else if fatal
                .message
                .contains("must be followed by a valid YAML whitespace")
            {
                place_tab_after_colon(text, &mut fatal);
            }
            builder.problems.push(fatal);
            Err(builder.problems)
        }
    }
}

/// Moves a tab problem to the tab itself, and says what to do when the tab
/// indents a line.
fn place_tab(text: &str, fatal: &mut Diagnostic) {
    let reported = Pos {
        line: fatal.line,
        column: fatal.column,
    };
    if let Some((pos, indent)) = text::tab_from(text, reported) {
        fatal.line = pos.line;
        fatal.column = pos.column;
        if indent {
            fatal.message =
                "invalid YAML: a tab indents this line; YAML indents with spaces only".to_string();
        }
    }
}

/// The parser refuses a tab between a key's `:` and its value (as libyaml
/// and go-yaml do), and reports the place after it: the error goes to the
/// tab, and says so.
fn place_tab_after_colon(text: &str, fatal: &mut Diagnostic) {
    let reported = Pos {
        line: fatal.line,
        column: fatal.column,
    };
    if text::char_before(text, reported) == Some('\t') {
        fatal.column -= 1;
        fatal.message =
            "invalid YAML: a tab separates this key's `:` from its value; use a space".to_string();
    }
}

pub(super) fn problem(pos: Pos, path: &str, message: String) -> Diagnostic {
    Diagnostic {
        line: pos.line,
        column: pos.column,
        path: path.to_string(),
        message,
        severity: Severity::Error,
    }
}

fn pos_of(mark: YamlMarker) -> Pos {
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

/// A mapping or list being built. Its key path is not kept: it is only
/// needed for a problem, and the stack can say it then (each frame's place
/// in its parent is the parent's current key or length).
struct Frame {
    /// Its node, added when it opened; its children are given at its end.
    id: Id,
    open: Open,
    /// The children so far: elements, or keys and values in turn.
    children: Vec<Id>,
    /// The keys of a mapping past [`SCANNED_KEYS`] keys, for the duplicate
    /// check (a smaller one is scanned).
    keys: HashMap<String, Id>,
}

/// Keys of a mapping checked for a duplicate by a scan; past this many,
/// by a hash set (a mapping may hold a million keys).
const SCANNED_KEYS: usize = 16;

enum Open {
    List,
    Map(Slot),
}

/// What a mapping expects next.
enum Slot {
    Key,
    Value(Id),
    /// The value of a key that was not a string: read and dropped.
    Drop,
}

#[derive(Default)]
struct Builder {
    tree: Tree,
    /// The open collections, outermost first; never longer than MAX_DEPTH.
    stack: Vec<Frame>,
    /// Frames' vectors, kept for reuse: most collections are small, and
    /// a file has hundreds of thousands.
    spare: Vec<(Vec<Id>, HashMap<String, Id>)>,
    root: Option<Id>,
    problems: Vec<Diagnostic>,
}

fn too_large(pos: Pos) -> impl FnOnce(TooLarge) -> Diagnostic {
    move |_| {
        let message = "the config is too large: more than 4 GiB of text or 4 billion values";
        problem(pos, "", message.into())
    }
}

impl Builder {
    /// Reads events until the end of the first document; `Err` is the
    /// problem that ended the parse.
    fn run(&mut self, parser: &mut Parser<std::str::Chars<'_>>) -> Result<(), Diagnostic> {
        let mut documents = 0;
        loop {
            let (event, mark) = parser.next_token().map_err(|e| {
                // The scanner looks ahead through flow collections (`[[[`)
                // and has a depth limit of its own, which can come first.
                let message = match e.info() {
                    "recursion limit exceeded" => too_deep(),
                    info => format!("invalid YAML: {info}"),
                };
                problem(pos_of(*e.marker()), "", message)
            })?;
            let pos = pos_of(mark);
            match event {
                Event::StreamEnd => break,
                Event::DocumentStart => {
                    documents += 1;
                    if documents > 1 {
                        // Reported rather than ignored without a word; the
                        // first document is whole, so its walk goes on.
                        let message = "a second YAML document (`---`) is not supported: \
                                       a config file holds one";
                        self.problems.push(problem(pos, "", message.into()));
                        break;
                    }
                }
                Event::Alias(_) => {
                    self.unsupported(pos, "YAML anchors and aliases are not supported");
                    let id = self.tree.scalar(pos, "", true).map_err(too_large(pos))?;
                    self.add(id)?;
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.check_extras(pos, anchor, tag.is_some());
                    // Plain scalars may be read as numbers or bools; quoted
                    // ones are always strings.
                    let plain = style == TScalarStyle::Plain;
                    let id = self
                        .tree
                        .scalar(pos, &text, plain)
                        .map_err(too_large(pos))?;
                    self.add(id)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    self.check_extras(pos, anchor, tag.is_some());
                    self.open(Open::List, pos)?;
                }
                Event::MappingStart(anchor, tag) => {
                    self.check_extras(pos, anchor, tag.is_some());
                    self.open(Open::Map(Slot::Key), pos)?;
                }
                Event::SequenceEnd | Event::MappingEnd => self.close(pos)?,
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            }
        }
        let root = match self.root {
            Some(root) => root,
            // An empty file, or one of comments only.
            None => self.empty_mapping(Pos { line: 1, column: 1 })?,
        };
        self.tree.finish(root);
        Ok(())
    }

    fn check_extras(&mut self, pos: Pos, anchor: usize, tag: bool) {
        if anchor != 0 {
            self.unsupported(pos, "YAML anchors and aliases are not supported");
        }
        if tag {
            self.unsupported(pos, "YAML tags (`!name`) are not supported");
        }
    }

    fn unsupported(&mut self, pos: Pos, message: &str) {
        let path = self.path(self.stack.len());
        self.problems.push(problem(pos, &path, message.into()));
    }

    /// The key path of the next value of the first `depth` open
    /// collections (of the innermost one's next value, for all of them).
    fn path(&self, depth: usize) -> String {
        let mut path = String::new();
        for frame in &self.stack[..depth] {
            match &frame.open {
                Open::List => path = format!("{path}[{}]", frame.children.len()),
                Open::Map(Slot::Value(key)) => path = join(&path, scalar_text(&self.tree, *key)),
                Open::Map(..) => {}
            }
        }
        path
    }

    fn open(&mut self, open: Open, pos: Pos) -> Result<(), Diagnostic> {
        if self.stack.is_empty() && matches!(open, Open::List) {
            return Err(not_a_mapping(pos));
        }
        if self.stack.len() == MAX_DEPTH {
            return Err(problem(pos, &cut(&self.path(MAX_DEPTH)), too_deep()));
        }
        let mapping = matches!(open, Open::Map(_));
        let id = self.tree.open(pos, mapping).map_err(too_large(pos))?;
        let (children, keys) = self.spare.pop().unwrap_or_default();
        self.stack.push(Frame {
            id,
            open,
            children,
            keys,
        });
        Ok(())
    }

    fn close(&mut self, pos: Pos) -> Result<(), Diagnostic> {
        let Some(mut frame) = self.stack.pop() else {
            return Ok(());
        };
        let closed = self.tree.close(frame.id, &frame.children);
        frame.children.clear();
        frame.keys.clear();
        self.spare.push((frame.children, frame.keys));
        closed.map_err(too_large(pos))?;
        self.add(frame.id)
    }

    /// Puts a finished node where it belongs: in the innermost collection,
    /// or at the top.
    fn add(&mut self, id: Id) -> Result<(), Diagnostic> {
        let depth = self.stack.len();
        let Some(frame) = self.stack.last_mut() else {
            return self.set_root(id);
        };
        let tree = &self.tree;
        let node = tree.node(id);
        // What went wrong, with the key of the value it is about, if any.
        let found = match &mut frame.open {
            Open::List => {
                frame.children.push(id);
                None
            }
            Open::Map(slot) => match std::mem::replace(slot, Slot::Key) {
                Slot::Key => match node.as_scalar() {
                    Some(_) => {
                        *slot = Slot::Value(id);
                        None
                    }
                    None => {
                        *slot = Slot::Drop;
                        let message = "a mapping key must be a plain string".to_string();
                        Some((node.pos(), None, message))
                    }
                },
                Slot::Value(key) => {
                    let text = scalar_text(tree, key);
                    match frame.first_key(tree, text) {
                        Some(first) => {
                            // The first one stays: its line is the one named.
                            let message = format!(
                                "duplicate key `{}` (first at line {})",
                                cut(text),
                                tree.node(first).pos().line
                            );
                            Some((tree.node(key).pos(), Some(key), message))
                        }
                        None => {
                            frame.insert(tree, key, id);
                            None
                        }
                    }
                }
                Slot::Drop => None,
            },
        };
        if let Some((pos, key, message)) = found {
            let parent = self.path(depth - 1);
            let path = key.map_or_else(
                || parent.clone(),
                |k| join(&parent, scalar_text(&self.tree, k)),
            );
            self.problems.push(problem(pos, &path, message));
        }
        Ok(())
    }

    fn set_root(&mut self, id: Id) -> Result<(), Diagnostic> {
        let node = self.tree.node(id);
        let root = match (node.as_mapping(), node.as_scalar()) {
            (Some(_), _) => id,
            // `---` alone, or `~`: an empty document.
            (_, Some(s)) if s.may_coerce() && matches!(s.as_str(), "" | "~" | "null") => {
                let pos = s.pos();
                self.empty_mapping(pos)?
            }
            _ => return Err(not_a_mapping(node.pos())),
        };
        self.root = Some(root);
        Ok(())
    }

    fn empty_mapping(&mut self, pos: Pos) -> Result<Id, Diagnostic> {
        let id = self.tree.open(pos, true).map_err(too_large(pos))?;
        self.tree.close(id, &[]).map_err(too_large(pos))?;
        Ok(id)
    }
}

impl Frame {
    /// The key already in this mapping with the text `text`, if any.
    fn first_key(&self, tree: &Tree, text: &str) -> Option<Id> {
        if self.children.len() / 2 > SCANNED_KEYS {
            return self.keys.get(text).copied();
        }
        self.children
            .chunks_exact(2)
            .map(|pair| pair[0])
            .find(|&k| scalar_text(tree, k) == text)
    }

    /// Adds `key: value` to this mapping (`key` is not in it yet).
    fn insert(&mut self, tree: &Tree, key: Id, value: Id) {
        self.children.extend([key, value]);
        let count = self.children.len() / 2;
        if count == SCANNED_KEYS + 1 {
            for pair in self.children.chunks_exact(2) {
                self.keys
                    .insert(scalar_text(tree, pair[0]).to_string(), pair[0]);
            }
        } else if count > SCANNED_KEYS {
            self.keys.insert(scalar_text(tree, key).to_string(), key);
        }
    }
}

/// The text of the scalar `id` (a key).
fn scalar_text(tree: &Tree, id: Id) -> &str {
    tree.node(id).as_scalar().map_or("", |s| s.as_str())
}

fn too_deep() -> String {
    format!("nested more than {MAX_DEPTH} levels deep")
}

fn not_a_mapping(pos: Pos) -> Diagnostic {
    let message = "the file must be a mapping with keys like process_manager and managed_processes";
    problem(pos, "", message.into())
}
