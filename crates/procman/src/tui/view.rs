//! Drawing the app: a header, the process table (or one process's
//! detail), the log pane, a message line and the keys. Only the rows in
//! view are built, so a table of thousands costs what a screenful does.
//!
//! Without colour (`NO_COLOR`, `TERM=dumb`) nothing is coloured; the
//! selection is still shown, by reverse video and a `>` marker, and every
//! state and health is a word.

use std::time::SystemTime;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::app::{App, Ask, Link};
use super::board::uptime;
use super::pane::{printable, Source};
use crate::cli::status::{describe, health_paint, size};
use crate::cli::table::{duration, or_dash, state_paint, Paint};

/// The keys, most used first (cut at the screen's width).
const KEYS: &str = "q quit  ⏎ detail  s start  x stop  r restart  K signal  / filter  \
                    f state  a all logs  ? search  u/d scroll";

/// Styles that follow `color`.
struct Look {
    color: bool,
}

impl Look {
    fn paint(&self, paint: Option<Paint>) -> Style {
        match (self.color, paint) {
            (false, _) | (true, None) => Style::default(),
            (true, Some(Paint::Green)) => Style::default().fg(Color::Green),
            (true, Some(Paint::Yellow)) => Style::default().fg(Color::Yellow),
            (true, Some(Paint::Red)) => Style::default().fg(Color::Red),
            (true, Some(Paint::Dim)) => Style::default().add_modifier(Modifier::DIM),
            (true, Some(Paint::Bold)) => Style::default().add_modifier(Modifier::BOLD),
        }
    }

    fn error(&self) -> Style {
        self.paint(Some(Paint::Red))
    }

    /// Reverse video and bold: readable with or without colour.
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    fn heading(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    fn found(&self) -> Style {
        match self.color {
            true => Style::default().fg(Color::Black).bg(Color::Yellow),
            false => Style::default().add_modifier(Modifier::REVERSED),
        }
    }
}

/// Draws everything onto `frame`.
pub fn draw(frame: &mut Frame, app: &mut App, now: SystemTime) {
    // Without a manager, nothing is known to run on: uptimes stop.
    let now = app.lost_at.unwrap_or(now);
    let look = Look { color: app.color };
    let [head, top, logs, message, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(55),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(header(app, &look, head.width), head);
    match &app.detail {
        Some(_) => detail(frame, app, top, now),
        None => table(frame, app, &look, top, now),
    }
    pane(frame, app, &look, logs);
    frame.render_widget(bottom_message(app, &look), message);
    frame.render_widget(bottom_keys(app), keys);
}

/// The top line. Cut at the screen's width, it would lose its end first:
/// `DISCONNECTED`, what most needs seeing. So the endpoint
/// gives way instead, shortened from its start (`…/state/procman.sock`).
fn header(app: &App, look: &Look, width: u16) -> Paragraph<'static> {
    let (up, trouble) = app.board.counts();
    let mut rest = vec![Span::raw(format!(
        "  {} {}, {up} up, {trouble} need a look",
        app.board.total(),
        if app.board.total() == 1 {
            "process"
        } else {
            "processes"
        }
    ))];
    let trouble = match &app.link {
        Link::Up => None,
        Link::Lost(why) => Some(format!("  DISCONNECTED: {} (reconnecting)", printable(why))),
        Link::Stalled(why) => Some(format!("  NOT ANSWERING: {}", printable(why))),
    };
    if let Some(text) = trouble {
        rest.push(Span::styled(
            text,
            look.error().add_modifier(Modifier::BOLD),
        ));
    }
    const NAME: &str = "procman";
    let used = NAME.len()
        + rest
            .iter()
            .map(|s| s.content.chars().count())
            .sum::<usize>();
    let room = (width as usize).saturating_sub(used + 2);
    let mut spans = vec![Span::styled(NAME, look.heading())];
    let endpoint = keep_end(&printable(&app.endpoint), room);
    if !endpoint.is_empty() {
        spans.push(Span::raw(format!("  {endpoint}")));
    }
    spans.extend(rest);
    Paragraph::new(Line::from(spans))
}

/// `text`, or `…` and its end when it is wider than `room` (nothing when
/// there is no room for more than the `…`).
fn keep_end(text: &str, room: usize) -> String {
    let n = text.chars().count();
    match (n <= room, room < 2) {
        (true, _) => text.to_string(),
        (false, true) => String::new(),
        (false, false) => {
            let end: String = text.chars().skip(n - (room - 1)).collect();
            format!("…{end}")
        }
    }
}

const COLUMNS: [(&str, u16); 8] = [
    ("ID", 0),
    ("STATE", 9),
    ("PID", 8),
    ("UPTIME", 7),
    ("RESTARTS", 8),
    ("HEALTH", 9),
    ("CPU", 6),
    ("MEM", 10),
];

fn table(frame: &mut Frame, app: &mut App, look: &Look, area: Rect, now: SystemTime) {
    // A border line at the bottom, the heading at the top.
    let height = area.height.saturating_sub(2) as usize;
    app.table_height = height;
    let pos = app.board.selected_pos().unwrap_or(0);
    let shown = app.board.shown_len();
    // Keep the selection in view, moving the window as little as possible.
    let mut offset = app.table_offset.min(shown.saturating_sub(height));
    if pos < offset {
        offset = pos;
    } else if height > 0 && pos >= offset + height {
        offset = pos + 1 - height;
    }
    app.table_offset = offset;
    // The columns that fit, from the left; the id gets the rest.
    let mut fit = COLUMNS.len();
    while fit > 2 && columns_width(fit) > area.width {
        fit -= 1;
    }
    let selected = app.board.selected();
    let rows: Vec<Row> = app
        .board
        .shown()
        .skip(offset)
        .take(height)
        .map(|p| {
            let mine = Some(p.id.as_str()) == selected;
            let marker = if mine { "> " } else { "  " };
            let usage = p.usage.as_ref();
            let cells = vec![
                Cell::from(format!("{marker}{}", printable(&p.id))),
                Cell::from(p.state.clone()).style(look.paint(state_paint(&p.state))),
                Cell::from(or_dash(p.pid.map(|n| n.to_string()))),
                Cell::from(or_dash(uptime(p, now).map(duration))),
                Cell::from(p.restarts.to_string()),
                Cell::from(or_dash(p.health.clone()))
                    .style(look.paint(p.health.as_deref().and_then(health_paint))),
                Cell::from(or_dash(
                    usage
                        .and_then(|u| u.cpu_percent)
                        .map(|c| format!("{c:.0}%")),
                )),
                Cell::from(or_dash(usage.and_then(|u| u.memory_bytes).map(size))),
            ];
            let row = Row::new(cells.into_iter().take(fit));
            match mine {
                true => row.style(look.selected()),
                false => row,
            }
        })
        .collect();
    let widths: Vec<Constraint> = COLUMNS[..fit]
        .iter()
        .map(|&(_, w)| match w {
            0 => Constraint::Min(ID_MIN),
            w => Constraint::Length(w),
        })
        .collect();
    let heading = Row::new(COLUMNS[..fit].iter().map(|&(name, _)| name)).style(look.heading());
    let b = &app.board;
    let filtered = !b.name_filter.is_empty() || b.state_filter != Default::default();
    let title = match (filtered, shown) {
        (false, _) => String::new(),
        (true, 0) => " no process matches the filter (Esc clears it) ".to_string(),
        (true, _) => format!(" showing {shown} of {} ", b.total()),
    };
    let filters = match (b.state_filter.label(), b.name_filter.is_empty()) {
        (state, true) => format!(" state: {state} "),
        (state, false) => format!(" state: {state}, id ~ {} ", printable(&b.name_filter)),
    };
    let t = Table::new(rows, widths)
        .header(heading)
        .column_spacing(1)
        .block(match filtered {
            true => Block::default()
                .borders(Borders::BOTTOM)
                .title_bottom(title)
                .title_bottom(Line::from(filters).right_aligned()),
            false => Block::default().borders(Borders::BOTTOM),
        });
    frame.render_widget(t, area);
}

/// The narrowest the id column gets before columns are left out.
const ID_MIN: u16 = 12;

/// The width of the first `n` columns, with the spaces between them.
fn columns_width(n: usize) -> u16 {
    let fixed: u16 = COLUMNS[..n].iter().map(|&(_, w)| w).sum();
    ID_MIN + fixed + n as u16 - 1
}

fn detail(frame: &mut Frame, app: &mut App, area: Rect, now: SystemTime) {
    // The room for text (a border line at the bottom); a scroll stops at
    // the last screenful.
    app.table_height = area.height.saturating_sub(1) as usize;
    let room = app.table_height as u16;
    let Some((id, shown)) = &app.detail else {
        return;
    };
    let text = match shown {
        // The text of `procman status ID`, without its colours (the view
        // paints its own).
        Some(d) => Text::from(
            describe(d, now, false)
                .lines()
                .map(|l| Line::from(printable(l)))
                .collect::<Vec<_>>(),
        ),
        None => Text::from(format!("reading {}…", printable(id))),
    };
    let last = (text.lines.len() as u16).saturating_sub(room);
    app.detail_scroll = app.detail_scroll.min(last);
    let title = match last {
        0 => " Esc: back to the table ".to_string(),
        _ => format!(
            " Esc: back to the table; ↑↓ PgUp PgDn: scroll ({}/{}) ",
            app.detail_scroll, last
        ),
    };
    let block = Block::default()
        .borders(Borders::BOTTOM)
        .title_bottom(title);
    let paragraph = Paragraph::new(text)
        .block(block)
        .scroll((app.detail_scroll, 0));
    frame.render_widget(paragraph, area);
}

fn pane(frame: &mut Frame, app: &mut App, look: &Look, area: Rect) {
    let height = area.height.saturating_sub(1) as usize;
    app.pane_height = height;
    let p = &app.pane;
    let whose = match &p.source {
        Some(Source::One(id)) => printable(id),
        Some(Source::All) => "every process".to_string(),
        None => "-".to_string(),
    };
    let mut title = format!(" log of {whose} ");
    match (p.scroll, p.skipped) {
        (0, _) => title.push_str("(following) "),
        (n, 0) => title.push_str(&format!("({n} lines below; F: follow) ")),
        (n, k) => title.push_str(&format!(
            "(held: {n} lines below, {k} newer not kept; F: the newest) "
        )),
    }
    if let Some(s) = p.searched() {
        title.push_str(&format!("search: {} ", printable(s)));
    }
    let lines: Vec<Line> = match &p.note {
        Some(note) => vec![Line::from(printable(note))],
        None => p
            .visible(height)
            .map(|(i, l)| match (p.current() == Some(i), p.searched()) {
                (true, _) => Line::styled(l.to_string(), look.found()),
                (false, Some(s)) if l.to_lowercase().contains(s) => {
                    Line::styled(l.to_string(), look.paint(Some(Paint::Bold)))
                }
                _ => Line::from(l.to_string()),
            })
            .collect(),
    };
    let block = Block::default().borders(Borders::TOP).title(title);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn bottom_message(app: &App, look: &Look) -> Paragraph<'static> {
    if let Some(prompt) = &app.prompt {
        let label = match prompt.ask {
            Ask::Filter => "filter by id: ",
            Ask::Search => "search the log: ",
            Ask::Signal => "signal to send (TERM, HUP, KILL, 10, …): ",
        };
        return Paragraph::new(Line::from(vec![
            Span::styled(label, look.heading()),
            Span::raw(printable(&prompt.text)),
            Span::styled("_", Style::default().add_modifier(Modifier::SLOW_BLINK)),
        ]));
    }
    match &app.message {
        Some((text, true)) => Paragraph::new(Line::styled(printable(text), look.error())),
        Some((text, false)) => Paragraph::new(Line::from(printable(text))),
        None => Paragraph::new(""),
    }
}

fn bottom_keys(app: &App) -> Paragraph<'static> {
    let keys = match (&app.prompt, &app.detail) {
        (Some(_), _) => "⏎ done  Esc cancel",
        (None, Some(_)) => "Esc back  s start  x stop  r restart  K signal",
        (None, None) => KEYS,
    };
    Paragraph::new(Line::styled(
        keys,
        Style::default().add_modifier(Modifier::DIM),
    ))
}

#[cfg(test)]
mod tests {
    use super::keep_end;

    #[test]
    fn keep_end_shortens_from_the_start() {
        assert_eq!(keep_end("/run/p.sock", 11), "/run/p.sock");
        assert_eq!(keep_end("/run/p.sock", 7), "…p.sock");
        assert_eq!(keep_end("/run/p.sock", 1), "");
        assert_eq!(keep_end("/run/p.sock", 0), "");
    }
}
