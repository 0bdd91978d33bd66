//! The log pane: the newest lines of the followed process (or of every
//! process, merged), a scroll position, and a search.
//!
//! Lines are made printable before they are kept: a child's escape
//! sequences must reach the screen as text, never as commands to the
//! terminal.

use std::collections::VecDeque;

/// Lines kept; older ones are dropped (the files keep everything).
pub const KEEP: usize = 5_000;

/// Whose log the pane follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The selected process (its id when the stream was opened).
    One(String),
    /// Every process, merged by time.
    All,
}

#[derive(Debug, Default)]
pub struct Pane {
    pub source: Option<Source>,
    /// Counts the streams opened: lines of an older one are dropped.
    pub generation: u64,
    lines: VecDeque<String>,
    /// Lines dropped at the front since the stream opened.
    pub dropped: u64,
    /// Lines let go while the pane was held (scrolled up) and full: the
    /// lines in view stay; `F` opens the stream again.
    pub skipped: u64,
    /// Lines between the bottom of the pane and the newest line; 0: the
    /// pane follows the newest.
    pub scroll: usize,
    /// Case-insensitive text searched for, and the line of the current
    /// match.
    search: Option<String>,
    current: Option<usize>,
    /// What the pane says instead of lines (an unmanaged process, an
    /// error of the stream).
    pub note: Option<String>,
}

impl Pane {
    /// Starts over for a new stream; returns its generation.
    pub fn open(&mut self, source: Source) -> u64 {
        self.generation += 1;
        self.source = Some(source);
        self.lines.clear();
        self.dropped = 0;
        self.skipped = 0;
        self.scroll = 0;
        self.current = None;
        self.note = None;
        self.generation
    }

    /// Follows nothing (no process is selected); lines of the stream
    /// before are ignored from now on.
    pub fn close(&mut self) {
        self.open(Source::All);
        self.source = None;
        self.note = Some("no process selected".to_string());
    }

    /// Adds lines of stream `generation` (ignored if older).
    pub fn push(&mut self, generation: u64, lines: impl IntoIterator<Item = String>) {
        if generation != self.generation {
            return;
        }
        for line in lines {
            match (self.lines.len() == KEEP, self.scroll > 0) {
                // Held and full: what is in view stays in view.
                (true, true) => {
                    self.skipped += 1;
                    continue;
                }
                (true, false) => {
                    self.lines.pop_front();
                    self.dropped += 1;
                    self.current = self.current.and_then(|c| c.checked_sub(1));
                }
                // Keep the lines in view where they are.
                (false, true) => self.scroll += 1,
                (false, false) => {}
            }
            self.lines.push_back(line);
        }
    }

    #[cfg(test)]
    pub fn lines(&self) -> &VecDeque<String> {
        &self.lines
    }

    /// Scrolls up (positive) or down by `by` lines; 0 at the bottom.
    pub fn scroll_by(&mut self, by: isize, height: usize) {
        let top = self.lines.len().saturating_sub(height);
        let to = (self.scroll as isize + by).clamp(0, top as isize);
        self.scroll = to as usize;
    }

    /// Sets the text searched for and jumps to its newest match.
    pub fn search(&mut self, text: &str, height: usize) {
        self.current = None;
        self.search = (!text.is_empty()).then(|| text.to_lowercase());
        self.step(false, height);
    }

    pub fn searched(&self) -> Option<&str> {
        self.search.as_deref()
    }

    /// The line of the current match.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// How many lines match.
    pub fn matches(&self) -> usize {
        match &self.search {
            Some(s) => self
                .lines
                .iter()
                .filter(|l| l.to_lowercase().contains(s))
                .count(),
            None => 0,
        }
    }

    /// Goes to the next match towards the older lines (`n`), or towards
    /// the newer (`newer`, `N`), scrolling it into view; false if none.
    pub fn step(&mut self, newer: bool, height: usize) -> bool {
        let Some(s) = &self.search else {
            return false;
        };
        let hit = |i: &usize| self.lines[*i].to_lowercase().contains(s.as_str());
        let len = self.lines.len();
        let found = match (newer, self.current) {
            (false, None) => (0..len).rev().find(hit),
            (false, Some(c)) => (0..c).rev().find(hit),
            (true, None) => None,
            (true, Some(c)) => (c + 1..len).find(hit),
        };
        let Some(at) = found else {
            return false;
        };
        self.current = Some(at);
        // Bring it into view: at most `height` lines above the bottom.
        let from_bottom = len - 1 - at;
        if from_bottom < self.scroll || from_bottom >= self.scroll + height.max(1) {
            self.scroll = from_bottom.saturating_sub(height.max(1) / 2);
        }
        true
    }

    /// The lines to show in a pane `height` tall, oldest first, with
    /// their index.
    pub fn visible(&self, height: usize) -> impl Iterator<Item = (usize, &str)> {
        let end = self.lines.len().saturating_sub(self.scroll);
        let start = end.saturating_sub(height);
        (start..end).map(move |i| (i, self.lines[i].as_str()))
    }
}

/// `text` as it can be put on the screen: tabs as spaces, every other
/// control character (ESC, CR, BEL, ...) as a visible `^X` or `\u{..}`.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str("    "),
            '\n' => {}
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push((b'@' + c as u8) as char);
            }
            '\u{7f}' => out.push_str("^?"),
            c if c.is_control() || reorders(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Whether `c` changes the direction or order in which a terminal lays out
/// text (the bidirectional marks, embeddings, overrides and isolates): a
/// line could then show other than what it holds.
fn reorders(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
