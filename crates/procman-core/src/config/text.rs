//! The file's bytes before they are parsed: UTF-8 text, and no NUL or
//! other control character (the parser takes a NUL for the end of the
//! file). Every problem is found at once, each placed by line and column.

use super::document::problem;
use super::error::Diagnostic;
use super::node::Pos;

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

/// Every run of control characters in `text` (already UTF-8).
pub(super) fn controls(text: &str) -> Result<(), Vec<Diagnostic>> {
    let mut found = TextProblems::new(text.as_bytes());
    found.controls_in(0, text.len());
    if found.count > 0 {
        return Err(found.finish());
    }
    Ok(())
}

/// The tab the parser means when it stops at one: its scanner reports some
/// at the start of the scalar or line before them, some just after them.
/// From there, the first tab that indents a line is the one (a tab inside a
/// line is allowed as a space); failing that, the first tab at all. Returns
/// its place and whether it indents its line.
pub(super) fn tab_from(text: &str, pos: Pos) -> Option<(Pos, bool)> {
    let mut line = 1;
    let mut start = 0;
    if pos.line > 1 {
        let nl = memchr::memchr_iter(b'\n', text.as_bytes()).nth(pos.line - 2)?;
        line = pos.line;
        start = nl + 1;
    }
    let skip: usize = text[start..]
        .chars()
        .take(pos.column - 1)
        .map(char::len_utf8)
        .sum();
    let mut at = start + skip;
    let mut column = pos.column;
    // Reported at the key after the indentation: a tab in that
    // indentation is the one.
    let lead = &text[start..at];
    if lead.bytes().all(|b| b == b' ' || b == b'\t') {
        if let Some(i) = lead.find('\t') {
            return Some((
                Pos {
                    line,
                    column: i + 1,
                },
                true,
            ));
        }
    }
    if text[start..at].ends_with('\t') {
        at -= 1;
        column -= 1;
    }
    let mut indent = text[start..at].bytes().all(|b| b == b' ');
    let mut first = None;
    for c in text[at..].chars() {
        match c {
            '\t' if indent => return Some((Pos { line, column }, true)),
            '\t' => first = first.or(Some(Pos { line, column })),
            '\n' => {
                line += 1;
                column = 0;
                indent = true;
            }
            ' ' => {}
            _ => indent = false,
        }
        column += 1;
    }
    first.map(|pos| (pos, false))
}

/// The character just before `pos` on its line, if any.
pub(super) fn char_before(text: &str, pos: Pos) -> Option<char> {
    let line = text.split('\n').nth(pos.line.checked_sub(1)?)?;
    line.chars().nth(pos.column.checked_sub(2)?)
}
