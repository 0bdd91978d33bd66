//! What the loader reports: one [`Diagnostic`] per problem, all of them
//! gathered in one [`ConfigErrors`] for the file.

use std::fmt;
use std::path::PathBuf;

/// One problem in a config file.
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
        errors.sort_by_key(|d| (d.line, d.column));
        ConfigErrors { file, errors }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, d) in self.errors.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", self.file.display())?;
            if d.line > 0 {
                write!(f, ":{}:{}", d.line, d.column)?;
            }
            f.write_str(": ")?;
            if !d.path.is_empty() {
                write!(f, "{}: ", d.path)?;
            }
            f.write_str(&d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The problems that recur all over the file, worded once.
#[derive(Debug, thiserror::Error)]
pub(super) enum Problem {
    #[error("unknown key `{key}`{hint}")]
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
    #[error("unknown {what} `{value}`; expected one of {choices}{hint}")]
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
