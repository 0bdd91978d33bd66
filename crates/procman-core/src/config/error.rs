//! What the loader reports: one [`Diagnostic`] per problem, all of them
//! gathered in one [`ConfigErrors`] for the file; warnings travel with the
//! loaded [`Config`](super::Config).

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file, or one warning about it.
///
/// `line` and `column` are 1-based; both are 0 for a problem that belongs
/// to the file as a whole (it could not be read). `path` is the key path
/// (`managed_processes[0].management.restart_policy.strategy`), empty when
/// the problem is below the level of keys (a YAML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    pub path: String,
    pub message: String,
    pub severity: Severity,
}

/// Whether a [`Diagnostic`] stops the file from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file loads; the setting is legal but very likely not meant.
    Warning,
}

impl Diagnostic {
    /// The diagnostic as one line, `FILE:LINE:COL: key.path: message`
    /// (with `warning: ` before the message of a warning), `file` named as
    /// the caller wants it shown.
    pub fn display<'a>(&'a self, file: &'a Path) -> impl fmt::Display + 'a {
        Located {
            file,
            diagnostic: self,
        }
    }
}

struct Located<'a> {
    file: &'a Path,
    diagnostic: &'a Diagnostic,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnostic;
        write!(f, "{}", self.file.display())?;
        if d.line > 0 {
            write!(f, ":{}:{}", d.line, d.column)?;
        }
        f.write_str(": ")?;
        if !d.path.is_empty() {
            write!(f, "{}: ", d.path)?;
        }
        if d.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&d.message)
    }
}

/// How many times a warning is shown in full before the rest of its kind
/// are counted on one line.
const SHOWN: usize = 2;

/// The warnings as lines to show, in the file's order. A warning that
/// recurs (the same message at the same key of many processes, as a loop
/// restart without a delay in each of 500, or the same key blamed for many
/// processes named in its message) is shown [`SHOWN`] times, then one line,
/// where the next would be, counts the others and names the last:
///
/// ```text
/// procman.yaml: managed_processes[*].management.restart_policy.restart_delay: warning: 498 more like it, the last at line 13498 (managed_processes[499].management.restart_policy.restart_delay)
/// ```
///
/// A kind with one more than [`SHOWN`] is shown whole: a count would take
/// as much room.
pub fn warning_lines(warnings: &[Diagnostic], file: &Path) -> Vec<String> {
    collapse(warnings, |w| (w.path.as_str(), w.message.as_str()))
        .into_iter()
        .map(|shown| match shown {
            Shown::One(w) => w.display(file).to_string(),
            Shown::More { kind, count, last } => format!(
                "{}: {kind}: warning: {count} more like it, the last at line {} ({})",
                file.display(),
                last.line,
                last.path
            ),
        })
        .collect()
}

/// One line of a collapsed list (see [`collapse`]).
#[derive(Debug, PartialEq)]
pub enum Shown<'a, T> {
    One(&'a T),
    /// Where a kind's next item would be: how many more there are, the
    /// kind's key path (list indices as `[*]`), and the last of them.
    More {
        kind: String,
        count: usize,
        last: &'a T,
    },
}

/// `items` (each a key path and a message) in their order, with each
/// kind that recurs shown [`SHOWN`] times and then counted, as
/// [`warning_lines`] does. Two items are of one kind when their paths are
/// the same but for list indices and their messages the same but for
/// the text in backquotes.
pub fn collapse<'a, T>(items: &'a [T], text: impl Fn(&T) -> (&str, &str)) -> Vec<Shown<'a, T>> {
    let kinds: Vec<(String, String)> = items
        .iter()
        .map(|w| {
            let (path, message) = text(w);
            (any_index(path), any_quoted(message))
        })
        .collect();
    /// What is known of one kind: how many in all, the last of them, and
    /// how many have been met so far in the file's order.
    struct Kind<'w, T> {
        total: usize,
        last: &'w T,
        seen: usize,
    }
    let mut by_kind: std::collections::HashMap<&(String, String), Kind<'_, T>> = Default::default();
    for (kind, w) in kinds.iter().zip(items) {
        let k = by_kind.entry(kind).or_insert(Kind {
            total: 0,
            last: w,
            seen: 0,
        });
        k.total += 1;
        k.last = w;
    }
    let mut shown = Vec::new();
    for (kind, w) in kinds.iter().zip(items) {
        let Some(k) = by_kind.get_mut(kind) else {
            continue;
        };
        k.seen += 1;
        if k.seen <= SHOWN || k.total <= SHOWN + 1 {
            shown.push(Shown::One(w));
        } else if k.seen == SHOWN + 1 {
            shown.push(Shown::More {
                kind: kind.0.clone(),
                count: k.total - SHOWN,
                last: k.last,
            });
        }
    }
    shown
}

/// `message` with the text of every `quoted` span left out, so that
/// messages naming different processes are of one kind.
fn any_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '`' {
            quoted = !quoted;
            out.push(c);
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// `path` with every list index made `[*]`.
fn any_index(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut digits = false;
    for c in path.chars() {
        match c {
            '[' => {
                out.push_str("[*");
                digits = true;
            }
            ']' => {
                out.push(']');
                digits = false;
            }
            _ if digits && c.is_ascii_digit() => {}
            _ => {
                digits = false;
                out.push(c);
            }
        }
    }
    out
}

/// How many characters of a user's text a message echoes.
pub(super) const ECHO_CHARS: usize = 64;

/// `text` as a message may echo it: at most [`ECHO_CHARS`] characters
/// (then `...`), control characters escaped, so that a 10,000-character id
/// or a value with a newline still makes one readable line.
pub(crate) fn cut(text: &str) -> Cow<'_, str> {
    // Every key path is made with this: the common case (short, printable
    // ASCII) must cost a byte scan, even in a debug build.
    let plain = text.len() <= ECHO_CHARS && text.bytes().all(|b| (0x20..0x7f).contains(&b));
    if plain {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == ECHO_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Every problem found in one config file, sorted by position.
///
/// Displays one line per problem, `FILE:LINE:COL: key.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file as the caller named it.
    pub file: PathBuf,
    pub errors: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// Sorts by line and column; problems at the same spot keep the order
    /// in which they were found.
    pub(super) fn new(file: PathBuf, mut errors: Vec<Diagnostic>) -> ConfigErrors {
        sort(&mut errors);
        ConfigErrors { file, errors }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, d) in self.errors.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", d.display(&self.file))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// By line and column; diagnostics at the same spot keep the order in
/// which they were found.
pub(super) fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.line, d.column));
}

/// The problems that recur all over the file, worded once.
#[derive(Debug, thiserror::Error)]
pub(super) enum Problem {
    #[error("unknown key `{}`{hint}", cut(.key))]
    UnknownKey { key: String, hint: Hint },
    #[error("required key is missing")]
    Missing,
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("must not be empty")]
    Empty,
    #[error("unknown {what} `{}`; expected one of {choices}{hint}", cut(.value))]
    UnknownChoice {
        what: &'static str,
        value: String,
        choices: String,
        hint: Hint,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The suffix of an unknown-key or unknown-value message.
#[derive(Debug, Default)]
pub(super) enum Hint {
    #[default]
    None,
    /// "did you mean `x`?": a known word close to what was written.
    Closest(String),
    /// The key is known, but one level down: "it belongs under `x`".
    BelongsUnder(&'static str),
}

impl Hint {
    /// The candidate closest to `word`, if it is close enough to be the
    /// likely intent.
    pub(super) fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Hint {
        // A word longer than anything we would echo is no typo of a known
        // name, and comparing it costs its length times each candidate's.
        if word.len() > 4 * ECHO_CHARS {
            return Hint::None;
        }
        candidates
            .into_iter()
            .map(|c| (strsim::jaro_winkler(word, c), c))
            .filter(|&(score, _)| score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(Hint::None, |(_, c)| Hint::Closest(c.to_string()))
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::None => Ok(()),
            Hint::Closest(word) => write!(f, "; did you mean `{word}`?"),
            Hint::BelongsUnder(place) => write!(f, "; it belongs under `{place}`"),
        }
    }
}
