//! The YAML text → a tree with positions.
//!
//! The tree is built here from the parser's (`yaml-rust2`) events rather
//! than by `marked-yaml`'s own loader, which cannot be made safe for
//! hostile input: it loads by recursion (a file nested 50,000 levels deep
//! overflows the stack and aborts the process), and it stops at the first
//! duplicate key (so that one hides every other error). The parser itself
//! takes a NUL byte for the end of the file. Here:
//!
//! - nesting is counted and refused past [`MAX_DEPTH`] before it is built,
//!   so nothing that walks or drops the tree can recurse deeply;
//! - a duplicate key, an anchor, an alias or a tag is reported and the
//!   tree is built on, so the walk still finds every other problem;
//! - the text itself is checked first, every problem at once (invalid
//!   UTF-8 in [`decode`], NUL and other control characters), and only a
//!   clean text is parsed; a byte-order mark is skipped, so positions
//!   count what an editor shows.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Marker, Node, Span};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker as YamlMarker, TScalarStyle};

use super::error::{cut, Diagnostic, Severity};
use super::node::{join, Pos};

/// Deepest nesting of mappings and lists. A real config nests 6 levels at
/// most (the file, `managed_processes`, a process, `management`,
/// `health_check`, `command`), so 64 refuses nothing written by hand.
pub(super) const MAX_DEPTH: usize = 64;

/// A parsed file: the tree (a mapping), and the problems that did not stop
/// the parse (duplicate keys, anchors, tags).
pub(super) struct Document {
    pub root: Node,
    pub problems: Vec<Diagnostic>,
}

/// Problems with the text itself reported at most (a binary file has
/// thousands): the rest are counted in one last line.
const MAX_TEXT_PROBLEMS: usize = 20;

/// The file's bytes as text, or every place where they are not UTF-8 text
/// (invalid sequences, NUL and other control characters), all at once.
pub(super) fn decode(bytes: &[u8]) -> Result<&str, Vec<Diagnostic>> {
    let mut found = TextProblems::new(bytes);
    let mut rest = 0;
    while rest < bytes.len() {
        match std::str::from_utf8(&bytes[rest..]) {
            Ok(_) => break,
            Err(e) => {
                let at = rest + e.valid_up_to();
                found.controls_in(rest, at);
                let byte = bytes[at];
                found.add(
                    at,
                    format!("invalid UTF-8 (byte 0x{byte:02x}): a config file must be UTF-8 text"),
                );
                rest = at + e.error_len().unwrap_or(bytes.len() - at);
            }
        }
    }
    if found.count == 0 {
        // Valid UTF-8: the control characters are checked by `parse`.
        return std::str::from_utf8(bytes).map_err(|_| Vec::new());
    }
    found.controls_in(rest, bytes.len());
    Err(found.finish())
}

/// Problems found in the text, in file order, each placed by line and
/// column (columns count characters, as an editor shows them).
struct TextProblems<'b> {
    bytes: &'b [u8],
    list: Vec<Diagnostic>,
    count: usize,
    /// Where the position was last computed: byte offset, line, start of
    /// that line (positions only move forward).
    at: (usize, usize, usize),
}

impl<'b> TextProblems<'b> {
    fn new(bytes: &'b [u8]) -> TextProblems<'b> {
        TextProblems {
            bytes,
            list: Vec::new(),
            count: 0,
            at: (0, 1, 0),
        }
    }

    fn pos(&mut self, offset: usize) -> Pos {
        let (from, mut line, mut start) = self.at;
        for nl in memchr::memchr_iter(b'\n', &self.bytes[from..offset]) {
            line += 1;
            start = from + nl + 1;
        }
        self.at = (offset, line, start);
        let mut head = &self.bytes[start..offset];
        if start == 0 {
            head = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
        }
        // Characters, not bytes; an invalid byte counts as one.
        let column = String::from_utf8_lossy(head).chars().count();
        Pos {
            line,
            column: column + 1,
        }
    }

    fn add(&mut self, offset: usize, message: String) {
        self.count += 1;
        if self.list.len() < MAX_TEXT_PROBLEMS {
            let pos = self.pos(offset);
            self.list.push(problem(pos, "", message));
        }
    }

    /// The control characters in `bytes[from..to]` (valid UTF-8 there).
    /// A run of them in a row is one problem.
    fn controls_in(&mut self, from: usize, to: usize) {
        let bad = |b: u8| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r');
        let mut i = from;
        while i < to {
            let b = self.bytes[i];
            if !bad(b) {
                i += 1;
                continue;
            }
            let run = self.bytes[i..to].iter().take_while(|&&c| bad(c)).count();
            let name = match b {
                0 => "a NUL byte".to_string(),
                b => format!("control character 0x{b:02x}"),
            };
            let more = match run {
                1 => String::new(),
                n => format!(" (and {} more after it)", n - 1),
            };
            self.add(
                i,
                format!("{name}{more} in the file: a config file is text"),
            );
            i += run;
        }
    }

    fn finish(mut self) -> Vec<Diagnostic> {
        if self.count > self.list.len() {
            let more = self.count - self.list.len();
            let last = self
                .list
                .last()
                .map_or(Pos { line: 1, column: 1 }, |d| Pos {
                    line: d.line,
                    column: d.column,
                });
            self.list.push(problem(
                last,
                "",
                format!("and {more} more problems with the text itself"),
            ));
        }
        self.list
    }
}

/// Parses the text into a tree whose top level is a mapping, or says why
/// it cannot be one (with every problem found before that).
pub(super) fn parse(text: &str) -> Result<Document, Vec<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut controls = TextProblems::new(text.as_bytes());
    controls.controls_in(0, text.len());
    if controls.count > 0 {
        return Err(controls.finish());
    }
    let mut builder = Builder::default();
    match builder.run(&mut Parser::new_from_str(text)) {
        Ok(root) => Ok(Document {
            root,
            problems: builder.problems,
        }),
        Err(fatal) => {
            builder.problems.push(fatal);
            Err(builder.problems)
        }
    }
}

fn problem(pos: Pos, path: &str, message: String) -> Diagnostic {
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
    open: Open,
}

enum Open {
    List(MarkedSequenceNode),
    Map(MarkedMappingNode, Slot),
}

/// What a mapping expects next.
enum Slot {
    Key,
    Value(MarkedScalarNode),
    /// The value of a key that was not a string: read and dropped.
    Drop,
}

#[derive(Default)]
struct Builder {
    /// The open collections, outermost first; never longer than MAX_DEPTH.
    stack: Vec<Frame>,
    root: Option<Node>,
    problems: Vec<Diagnostic>,
}

impl Builder {
    /// Reads events until the end of the first document; `Err` is the
    /// problem that ended the parse.
    fn run(&mut self, parser: &mut Parser<std::str::Chars<'_>>) -> Result<Node, Diagnostic> {
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
            let marker = Marker::new(0, mark.index(), mark.line(), mark.col() + 1);
            match event {
                Event::StreamEnd => break,
                Event::DocumentStart => {
                    documents += 1;
                    if documents > 1 {
                        // Reported rather than ignored without a word; the
                        // first document is whole, so its walk goes on.
                        let message = "a second YAML document (`---`) is not supported: \
                                       a config file holds one";
                        self.problems
                            .push(problem(pos_of(mark), "", message.into()));
                        break;
                    }
                }
                Event::Alias(_) => {
                    self.unsupported(pos_of(mark), "YAML anchors and aliases are not supported");
                    self.add(Node::from(MarkedScalarNode::new(
                        Span::new_start(marker),
                        "",
                    )))?;
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.check_extras(pos_of(mark), anchor, tag.is_some());
                    let mut scalar = MarkedScalarNode::new(Span::new_start(marker), text);
                    // Plain scalars may be read as numbers or bools; quoted
                    // ones are always strings.
                    scalar.set_coerce(style == TScalarStyle::Plain);
                    self.add(Node::from(scalar))?;
                }
                Event::SequenceStart(anchor, tag) => {
                    self.check_extras(pos_of(mark), anchor, tag.is_some());
                    let list = MarkedSequenceNode::new_empty(Span::new_start(marker));
                    self.open(Open::List(list), pos_of(mark))?;
                }
                Event::MappingStart(anchor, tag) => {
                    self.check_extras(pos_of(mark), anchor, tag.is_some());
                    let map = MarkedMappingNode::new_empty(Span::new_start(marker));
                    self.open(Open::Map(map, Slot::Key), pos_of(mark))?;
                }
                Event::SequenceEnd | Event::MappingEnd => self.close(marker)?,
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            }
        }
        Ok(self.root.take().unwrap_or_else(|| {
            // An empty file, or one of comments only.
            let start = Marker::new(0, 0, 1, 1);
            Node::from(MarkedMappingNode::new_empty(Span::new_start(start)))
        }))
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
                Open::List(list) => path = format!("{path}[{}]", list.len()),
                Open::Map(_, Slot::Value(key)) => path = join(&path, key.as_str()),
                Open::Map(..) => {}
            }
        }
        path
    }

    fn open(&mut self, open: Open, pos: Pos) -> Result<(), Diagnostic> {
        if self.stack.is_empty() && matches!(open, Open::List(_)) {
            return Err(not_a_mapping(pos));
        }
        if self.stack.len() == MAX_DEPTH {
            return Err(problem(pos, &cut(&self.path(MAX_DEPTH)), too_deep()));
        }
        self.stack.push(Frame { open });
        Ok(())
    }

    fn close(&mut self, end: Marker) -> Result<(), Diagnostic> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let node = match frame.open {
            Open::List(mut list) => {
                list.span_mut().set_end(Some(end));
                Node::from(list)
            }
            Open::Map(mut map, _) => {
                map.span_mut().set_end(Some(end));
                Node::from(map)
            }
        };
        self.add(node)
    }

    /// Puts a finished node where it belongs: in the innermost collection,
    /// or at the top.
    fn add(&mut self, node: Node) -> Result<(), Diagnostic> {
        let depth = self.stack.len();
        let Some(frame) = self.stack.last_mut() else {
            return self.set_root(node);
        };
        // What went wrong, with the key of the value it is about, if any.
        let found = match &mut frame.open {
            Open::List(list) => {
                list.push(node);
                None
            }
            Open::Map(map, slot) => match std::mem::replace(slot, Slot::Key) {
                Slot::Key => match node {
                    Node::Scalar(key) => {
                        *slot = Slot::Value(key);
                        None
                    }
                    other => {
                        *slot = Slot::Drop;
                        let message = "a mapping key must be a plain string".to_string();
                        Some((Pos::of_node(&other), None, message))
                    }
                },
                Slot::Value(key) => match map.get_key_value(key.as_str()) {
                    Some((first, _)) => {
                        // The first one stays: its line is the one named.
                        let message = format!(
                            "duplicate key `{}` (first at line {})",
                            cut(key.as_str()),
                            Pos::of_key(first).line
                        );
                        Some((Pos::of_key(&key), Some(key), message))
                    }
                    None => {
                        map.insert(key, node);
                        None
                    }
                },
                Slot::Drop => None,
            },
        };
        if let Some((pos, key, message)) = found {
            let parent = self.path(depth - 1);
            let path = key.map_or_else(|| parent.clone(), |k| join(&parent, k.as_str()));
            self.problems.push(problem(pos, &path, message));
        }
        Ok(())
    }

    fn set_root(&mut self, node: Node) -> Result<(), Diagnostic> {
        let root = match node {
            Node::Mapping(_) => node,
            // `---` alone, or `~`: an empty document.
            Node::Scalar(s) if s.may_coerce() && matches!(s.as_str(), "" | "~" | "null") => {
                Node::from(MarkedMappingNode::new_empty(*s.span()))
            }
            other => return Err(not_a_mapping(Pos::of_node(&other))),
        };
        self.root = Some(root);
        Ok(())
    }
}

fn too_deep() -> String {
    format!("nested more than {MAX_DEPTH} levels deep")
}

fn not_a_mapping(pos: Pos) -> Diagnostic {
    let message = "the file must be a mapping with keys like process_manager and managed_processes";
    problem(pos, "", message.into())
}
