//! Tables and the small formats the client commands share: columns as
//! wide as their content, colours that take no width, durations as people
//! write them (`3m12s`, `2h4m`, `5d3h`).

/// A colour for a cell (ANSI SGR), shown only on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    Green,
    Yellow,
    Red,
    Dim,
    Bold,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Green => "32",
            Paint::Yellow => "33",
            Paint::Red => "31",
            Paint::Dim => "2",
            Paint::Bold => "1",
        }
    }

    /// `text` in this colour when `color`, else as it is.
    pub fn apply(self, text: &str, color: bool) -> String {
        match color {
            true => format!("\x1b[{}m{text}\x1b[0m", self.code()),
            false => text.to_string(),
        }
    }
}

/// The colour of a process state: green running, yellow on its way
/// somewhere, red failed, dim not running.
pub fn state_paint(state: &str) -> Option<Paint> {
    match state {
        "running" => Some(Paint::Green),
        "waiting" | "starting" | "backoff" | "stopping" => Some(Paint::Yellow),
        "failed" => Some(Paint::Red),
        "stopped" | "exited" | "registered" => Some(Paint::Dim),
        _ => None,
    }
}

/// A cell: its text and, maybe, a colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub paint: Option<Paint>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            paint: None,
        }
    }

    pub fn painted(text: impl Into<String>, paint: Option<Paint>) -> Cell {
        Cell {
            text: text.into(),
            paint,
        }
    }
}

/// How a column lines up its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with a header row; columns are separated by two spaces and as
/// wide as their widest cell (in characters); the last column is not
/// padded, so no line ends in spaces.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones are dropped).
    pub fn row(&mut self, mut cells: Vec<Cell>) {
        cells.resize(self.columns.len(), Cell::plain(""));
        self.rows.push(cells);
    }

    /// The lines of the table, header first, each ending in `\n`.
    pub fn render(&self, color: bool) -> String {
        let width = |s: &str| s.chars().count();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                self.rows
                    .iter()
                    .map(|r| width(&r[i].text))
                    .chain([width(name)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|(name, _)| Cell::painted(*name, Some(Paint::Bold)))
            .collect();
        let mut out = String::new();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            let last = cells.len().saturating_sub(1);
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(width(&cell.text));
                let text = match cell.paint {
                    Some(p) => p.apply(&cell.text, color),
                    None => cell.text.clone(),
                };
                let right = self.columns[i].1 == Align::Right;
                if right {
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str(&text);
                if i < last {
                    if !right {
                        line.push_str(&" ".repeat(pad));
                    }
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A duration in seconds in its two largest units: `42s`, `3m12s`,
/// `2h4m`, `5d3h` (rounded down; `0s` below a second).
pub fn duration(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// `-` for a missing value.
pub fn or_dash(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&[
            ("ID", Align::Left),
            ("STATE", Align::Left),
            ("PID", Align::Right),
            ("LAST", Align::Left),
        ]);
        t.row(vec![
            Cell::plain("web"),
            Cell::painted("running", state_paint("running")),
            Cell::plain("12345"),
            Cell::plain("-"),
        ]);
        t.row(vec![
            Cell::plain("a-much-longer-id"),
            Cell::painted("failed", state_paint("failed")),
            Cell::plain("7"),
            Cell::plain("code 1"),
        ]);
        t
    }

    #[test]
    fn columns_are_as_wide_as_their_content_and_lines_end_without_spaces() {
        let got = sample().render(false);
        let want = [
            "ID                STATE      PID  LAST",
            "web               running  12345  -",
            "a-much-longer-id  failed       7  code 1",
        ];
        assert_eq!(got.lines().collect::<Vec<_>>(), want, "{got}");
        assert!(got.lines().all(|l| !l.ends_with(' ')), "{got:?}");
    }

    #[test]
    fn colour_takes_no_width_and_is_absent_when_off() {
        let plain = sample().render(false);
        assert!(!plain.contains('\x1b'), "{plain:?}");
        let coloured = sample().render(true);
        assert!(coloured.contains("\x1b[32mrunning\x1b[0m"), "{coloured:?}");
        assert!(coloured.contains("\x1b[31mfailed\x1b[0m"), "{coloured:?}");
        let strip = |s: &str| {
            let mut out = String::new();
            let mut esc = false;
            for c in s.chars() {
                match (esc, c) {
                    (false, '\x1b') => esc = true,
                    (true, 'm') => esc = false,
                    (true, _) => {}
                    (false, c) => out.push(c),
                }
            }
            out
        };
        assert_eq!(strip(&coloured), plain);
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new(&[("ID", Align::Left), ("X", Align::Left)]);
        t.row(vec![Cell::plain("café"), Cell::plain("1")]);
        t.row(vec![Cell::plain("tea"), Cell::plain("2")]);
        assert_eq!(t.render(false), "ID    X\ncafé  1\ntea   2\n");
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        for (secs, want) in [
            (0.0, "0s"),
            (0.9, "0s"),
            (42.7, "42s"),
            (192.0, "3m12s"),
            (3600.0, "1h0m"),
            (7440.0, "2h4m"),
            (86_399.0, "23h59m"),
            (5.0 * 86_400.0 + 3.0 * 3600.0 + 59.0, "5d3h"),
            (-3.0, "0s"),
            (f64::NAN, "0s"),
        ] {
            assert_eq!(duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn states_have_their_colours() {
        assert_eq!(state_paint("running"), Some(Paint::Green));
        for s in ["waiting", "starting", "backoff", "stopping"] {
            assert_eq!(state_paint(s), Some(Paint::Yellow), "{s}");
        }
        assert_eq!(state_paint("failed"), Some(Paint::Red));
        for s in ["stopped", "exited"] {
            assert_eq!(state_paint(s), Some(Paint::Dim), "{s}");
        }
    }
}
