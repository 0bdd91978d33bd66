//! The walker's toolbox: opens mappings (reporting unknown keys), reads
//! typed scalars (after `${VAR}` expansion), and collects every problem
//! instead of stopping at the first.
//!
//! Each reader returns `None` when the value is wrong, after reporting it;
//! the caller then falls back to the default so the walk can go on and
//! find the next problem. The result is thrown away if anything was
//! reported, so those stand-in defaults never reach the engine.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{sort, Diagnostic, Hint, Problem, Severity};
use super::expand::expand;
use super::limits::FdCeiling;
use super::node::{Item, Pos, Section};
use super::scalar;

/// A key's value: absent, given and valid, or given and wrong (and
/// already reported, so checks across keys skip it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Field<T> {
    Absent,
    Given(T),
    Bad,
}

impl<T> Field<T> {
    /// The value, or `default` when absent or wrong.
    pub(super) fn or(self, default: T) -> T {
        self.value().unwrap_or(default)
    }

    pub(super) fn value(self) -> Option<T> {
        match self {
            Field::Given(v) => Some(v),
            Field::Absent | Field::Bad => None,
        }
    }

    pub(super) fn is_bad(&self) -> bool {
        matches!(self, Field::Bad)
    }
}

/// Problems reported before "did you mean" hints stop being worked out.
const MAX_HINTED: usize = 100;

pub(super) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

pub(super) struct Decoder<'e> {
    env: Env<'e>,
    /// Relative paths in the file resolve against this (absolute) directory.
    base_dir: PathBuf,
    diagnostics: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Read at the first `max_file_descriptors`, and kept for the others:
    /// reading it costs two files of `/proc`.
    fd_ceiling: Option<FdCeiling>,
    /// Whether the config is for this host: its accounts and its limits'
    /// ceilings are checked (not for `procman export`).
    pub(super) here: bool,
}

impl<'e> Decoder<'e> {
    /// A decoder that starts with the problems the parse already found.
    pub(super) fn new(env: Env<'e>, base_dir: PathBuf, found: Vec<Diagnostic>) -> Decoder<'e> {
        Decoder {
            env,
            base_dir,
            diagnostics: found,
            warnings: Vec::new(),
            fd_ceiling: None,
            here: true,
        }
    }

    pub(super) fn report(&mut self, pos: Pos, path: &str, problem: impl Display) {
        self.diagnostics.push(Diagnostic {
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message: problem.to_string(),
            severity: Severity::Error,
        });
    }

    /// Records a warning: the file still loads.
    pub(super) fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message: message.into(),
            severity: Severity::Warning,
        });
    }

    /// Reports a problem with the value of `item`.
    pub(super) fn invalid(&mut self, item: &Item<'_>, message: impl Into<String>) {
        self.report(item.pos(), &item.path, Problem::Invalid(message.into()));
    }

    /// What bounds a `max_file_descriptors` on this host, as of this load.
    pub(super) fn fd_ceiling(&mut self) -> FdCeiling {
        *self.fd_ceiling.get_or_insert_with(FdCeiling::current)
    }

    /// How many problems have been reported so far, to [`Decoder::rollback`] to.
    pub(super) fn mark(&self) -> usize {
        self.diagnostics.len()
    }

    /// Forgets the problems reported since `mark`.
    pub(super) fn rollback(&mut self, mark: usize) {
        self.diagnostics.truncate(mark);
    }

    /// The errors and the warnings, each sorted by position.
    pub(super) fn into_diagnostics(self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        let (mut errors, mut warnings) = (self.diagnostics, self.warnings);
        sort(&mut errors);
        sort(&mut warnings);
        (errors, warnings)
    }

    /// Opens the mapping at `item` and reports each key not in `known`;
    /// a key found in `elsewhere` is known one level down, and the message
    /// says where it belongs.
    pub(super) fn open<'n>(
        &mut self,
        item: &Item<'n>,
        known: &[&str],
        elsewhere: &[(&str, &'static str)],
    ) -> Section<'n> {
        let section = self.open_any(item);
        let keys = section.map.into_iter().flat_map(|map| map.keys());
        for key in keys.filter(|key| !known.contains(&key.as_str())) {
            let (key_pos, key) = (key.pos(), key.as_str());
            let hint = match elsewhere.iter().find(|(k, _)| *k == key) {
                Some((_, place)) => Hint::BelongsUnder(place),
                // Past a hundred unknown keys nobody reads the hints, and
                // each costs a string comparison with every known key.
                None if self.diagnostics.len() < MAX_HINTED => {
                    Hint::closest(key, known.iter().copied())
                }
                None => Hint::None,
            };
            let problem = Problem::UnknownKey {
                key: key.to_string(),
                hint,
            };
            self.report(key_pos, &section.child(key), problem);
        }
        section
    }

    /// Opens the mapping at `item`, whatever its keys (environment
    /// variables, process ids).
    pub(super) fn open_any<'n>(&mut self, item: &Item<'n>) -> Section<'n> {
        let map = item.node.as_mapping();
        if map.is_none() {
            self.wrong_type(item, "a mapping");
        }
        Section {
            map,
            path: item.path.clone(),
            pos: item.key_pos,
        }
    }

    /// The sub-section `key` of `parent`; absent (all defaults) when the
    /// key is not there.
    pub(super) fn child<'n>(
        &mut self,
        parent: &Section<'n>,
        key: &str,
        known: &[&str],
    ) -> Section<'n> {
        self.child_with(parent, key, known, &[])
    }

    /// [`Decoder::child`] with hints for keys that belong one level down.
    pub(super) fn child_with<'n>(
        &mut self,
        parent: &Section<'n>,
        key: &str,
        known: &[&str],
        elsewhere: &[(&str, &'static str)],
    ) -> Section<'n> {
        match parent.get(key) {
            Some(item) => self.open(&item, known, elsewhere),
            None => Section::absent(parent, key),
        }
    }

    /// Reads `key` of `section` with `read`.
    pub(super) fn field<'n, T>(
        &mut self,
        section: &Section<'n>,
        key: &str,
        read: impl FnOnce(&mut Self, &Item<'n>) -> Option<T>,
    ) -> Field<T> {
        match section.get(key) {
            None => Field::Absent,
            Some(item) => read(self, &item).map_or(Field::Bad, Field::Given),
        }
    }

    /// The value of a key that must be there.
    pub(super) fn require<'n>(&mut self, section: &Section<'n>, key: &str) -> Option<Item<'n>> {
        let item = section.get(key);
        if item.is_none() {
            // `key:` with nothing after it is there, but empty.
            match section.written(key) {
                Some(empty) => self.report(empty.key_pos, &empty.path, Problem::Empty),
                None => self.report(section.pos, &section.child(key), Problem::Missing),
            }
        }
        item
    }

    pub(super) fn wrong_type(&mut self, item: &Item<'_>, expected: &'static str) {
        let problem = Problem::WrongType {
            expected,
            found: item.found(),
        };
        self.report(item.pos(), &item.path, problem);
    }

    /// The elements of a list.
    pub(super) fn list<'n>(&mut self, item: &Item<'n>) -> Option<Vec<Item<'n>>> {
        let elements = item.elements();
        if elements.is_none() {
            self.wrong_type(item, "a list");
        }
        elements
    }

    /// A scalar's text, `${VAR}`-expanded.
    pub(super) fn text(&mut self, item: &Item<'_>, expected: &'static str) -> Option<String> {
        let scalar = match item.node.as_scalar() {
            Some(scalar) if !item.is_null() => scalar,
            _ => {
                self.wrong_type(item, expected);
                return None;
            }
        };
        match expand(scalar.as_str(), self.env) {
            // A NUL written as an escape ("\0", "\u0000"): no argument,
            // path or variable of a process can hold one, so the value
            // could never be used as written.
            Ok(text) if text.contains('\0') => {
                self.invalid(
                    item,
                    "contains a NUL character, which no argument, path or variable can hold",
                );
                None
            }
            Ok(text) => Some(text),
            Err(e) => {
                self.invalid(item, e.to_string());
                None
            }
        }
    }

    /// A scalar, expanded and then parsed by `parse`.
    fn parsed<T>(
        &mut self,
        item: &Item<'_>,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.text(item, expected)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.invalid(item, message);
                None
            }
        }
    }

    /// Any scalar as a string (`8080` and `true` included).
    pub(super) fn string(&mut self, item: &Item<'_>) -> Option<String> {
        self.text(item, "a string")
    }

    /// A string that must not be empty after expansion.
    pub(super) fn nonempty(&mut self, item: &Item<'_>) -> Option<String> {
        let text = self.string(item)?;
        if text.trim().is_empty() {
            self.report(item.pos(), &item.path, Problem::Empty);
            return None;
        }
        Some(text)
    }

    pub(super) fn boolean(&mut self, item: &Item<'_>) -> Option<bool> {
        self.parsed(item, "true or false", scalar::boolean)
    }

    /// A whole number in `min..=max`.
    pub(super) fn uint(&mut self, item: &Item<'_>, min: u64, max: u64) -> Option<u64> {
        self.parsed(item, "a whole number", |t| scalar::uint(t, min, max))
    }

    pub(super) fn float(&mut self, item: &Item<'_>) -> Option<f64> {
        self.parsed(item, "a number", scalar::float)
    }

    /// `0.1` or `10%`.
    pub(super) fn fraction(&mut self, item: &Item<'_>) -> Option<f64> {
        self.parsed(item, "a number or a percentage", scalar::fraction)
    }

    /// `80`, `80.0` or `80%`.
    pub(super) fn percent(&mut self, item: &Item<'_>) -> Option<f64> {
        self.parsed(item, "a percentage", scalar::percent)
    }

    pub(super) fn duration(&mut self, item: &Item<'_>) -> Option<Duration> {
        self.parsed(item, "a duration", scalar::duration)
    }

    /// A non-empty string that `check` accepts (a URL, `host:port`).
    pub(super) fn checked(
        &mut self,
        item: &Item<'_>,
        check: impl FnOnce(&str) -> Result<(), String>,
    ) -> Option<String> {
        let text = self.nonempty(item)?;
        match check(&text) {
            Ok(()) => Some(text),
            Err(message) => {
                self.invalid(item, message);
                None
            }
        }
    }

    /// A path, resolved against the config file's directory.
    pub(super) fn path(&mut self, item: &Item<'_>) -> Option<PathBuf> {
        let text = self.nonempty(item)?;
        Some(self.resolve(&text))
    }

    /// `base_dir/text` for a relative path, with `.` components dropped.
    pub(super) fn resolve(&self, text: &str) -> PathBuf {
        self.base_dir.join(Path::new(text)).components().collect()
    }

    /// One of a fixed set of words.
    pub(super) fn choice<T: Copy>(
        &mut self,
        item: &Item<'_>,
        what: &'static str,
        choices: &[(&'static str, T)],
    ) -> Option<T> {
        let text = self.text(item, "a string")?;
        let word = text.trim();
        if let Some(&(_, value)) = choices.iter().find(|(name, _)| *name == word) {
            return Some(value);
        }
        let names = || choices.iter().map(|&(name, _)| name);
        let problem = Problem::UnknownChoice {
            what,
            value: word.to_string(),
            choices: names().collect::<Vec<_>>().join(", "),
            hint: Hint::closest(word, names()),
        };
        self.report(item.pos(), &item.path, problem);
        None
    }

    /// A list of scalars as strings (numbers are fine: `[--port, 8080]`).
    pub(super) fn string_list(&mut self, item: &Item<'_>) -> Option<Vec<String>> {
        let elements = self.list(item)?;
        let before = self.mark();
        let values: Vec<String> = elements.iter().filter_map(|e| self.string(e)).collect();
        (self.mark() == before).then_some(values)
    }
}
