//! The screens, drawn into ratatui's `TestBackend` and compared with the
//! snapshot files in `crates/procman/tests/tui/` (`UPDATE_SNAPSHOTS=1`
//! writes them again); and the styles, which a text snapshot cannot show.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use procman_api::{Event, ResourceUsage, Transition};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

use super::super::app::{App, Link, News};
use super::super::view;

pub(crate) use crate::cli::status::tests::process;

pub fn now() -> SystemTime {
    humantime::parse_rfc3339("2026-12-02T09:18:00Z").expect("time")
}

/// Four processes in four kinds of state, and some log lines.
pub fn sample(color: bool) -> App {
    let mut web = process("web", "running");
    web.pid = Some(4242);
    web.runs = 3;
    web.restarts = 2;
    web.started_at = Some("2026-12-02T09:15:00Z".into());
    web.health = Some("healthy".into());
    web.usage = Some(ResourceUsage {
        memory_bytes: Some(21_700_000),
        cpu_seconds: Some(1.5),
        cpu_percent: Some(12.4),
        processes: 2,
        open_files: Some(9),
        source: "cgroup".into(),
    });
    let mut worker = process("worker", "failed");
    worker.runs = 4;
    worker.restarts = 3;
    let db = process("db", "stopped");
    let mut api = process("api", "waiting");
    api.waiting_reason = Some("waiting for db to be running".into());
    let mut app = App::new("unix:/run/procman/procman.sock".into(), color);
    let follow = app.apply(News::List(vec![web, worker, db, api]));
    assert!(follow.is_some(), "the pane follows the first process");
    let generation = app.pane.generation;
    let lines = (1..=12).map(|i| format!("2026-12-02T09:17:{i:02}Z stdout request {i} served"));
    app.apply(News::Log(generation, lines.collect()));
    app
}

pub fn key(app: &mut App, code: KeyCode) -> Option<super::super::app::Command> {
    app.key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

pub fn draw(app: &mut App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| view::draw(f, app, now())).expect("draw");
    terminal.backend().buffer().clone()
}

/// The buffer's text, one line per row, without trailing blanks.
pub fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Compares `buffer`'s text with the snapshot `name`.
fn snapshot(name: &str, buffer: &Buffer) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tui")
        .join(format!("{name}.txt"));
    let got = text(buffer);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &got).expect("write snapshot");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert!(
        got == want,
        "{name}: the screen differs from {} (UPDATE_SNAPSHOTS=1 writes it again)\n--- got\n{got}--- want\n{want}",
        path.display()
    );
}

/// Where `text` starts on the screen.
fn find(buffer: &Buffer, needle: &str) -> (u16, u16) {
    let all = text(buffer);
    for (y, line) in all.lines().enumerate() {
        if let Some(byte) = line.find(needle) {
            let x = line[..byte].chars().count();
            return (x as u16, y as u16);
        }
    }
    panic!("{needle:?} not on the screen:\n{all}");
}

#[test]
fn the_table_shows_every_column_and_the_log_of_the_selected_process() {
    let mut app = sample(true);
    let b = draw(&mut app, 100, 26);
    snapshot("table", &b);
}

#[test]
fn states_and_health_are_coloured_and_the_selection_is_reversed() {
    let mut app = sample(true);
    let b = draw(&mut app, 100, 26);
    let (x, y) = find(&b, "running");
    assert_eq!(b[(x, y)].fg, Color::Green);
    let (x, y) = find(&b, "failed");
    assert_eq!(b[(x, y)].fg, Color::Red);
    let (x, y) = find(&b, "healthy");
    assert_eq!(b[(x, y)].fg, Color::Green);
    let (x, y) = find(&b, "> web");
    assert!(b[(x, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn without_colour_nothing_is_coloured_and_the_selection_still_shows() {
    let mut app = sample(false);
    let b = draw(&mut app, 100, 26);
    for cell in b.content() {
        assert_eq!(cell.fg, Color::Reset, "a coloured cell: {cell:?}");
        assert_eq!(cell.bg, Color::Reset, "a coloured cell: {cell:?}");
    }
    let (x, y) = find(&b, "> web");
    assert!(b[(x, y)].modifier.contains(Modifier::REVERSED));
    // The same words as with colour.
    assert_eq!(text(&b), text(&draw(&mut sample(true), 100, 26)));
}

#[test]
fn an_event_changes_its_row_at_once() {
    let mut app = sample(true);
    let e = Event {
        seq: 7,
        process: "db".into(),
        from: "stopped".into(),
        to: "running".into(),
        cause: "start requested".into(),
        cause_kind: "start_requested".into(),
        pid: Some(5151),
        run: 1,
        at: "2026-12-02T09:17:58Z".into(),
    };
    app.apply(News::Event(e, Instant::now()));
    let b = draw(&mut app, 100, 26);
    let row = text(&b)
        .lines()
        .find(|l| l.contains(" db "))
        .map(str::to_string);
    let row = row.expect("db row");
    assert!(
        row.contains("running") && row.contains("5151") && row.contains("2s"),
        "{row}"
    );
}

#[test]
fn a_filter_that_matches_nothing_says_so() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "nope");
    let b = draw(&mut app, 100, 26);
    snapshot("filter-none", &b);
}

#[test]
fn the_detail_view_has_the_text_of_procman_status() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Enter);
    let mut p = app.board.get("web").expect("web").clone();
    p.last_error = None;
    let mut d = crate::cli::status::tests::detail(p);
    d.last_transition = Some(Transition {
        from: "starting".into(),
        to: "running".into(),
        cause: "ready".into(),
        cause_kind: "ready".into(),
        at: "2026-12-02T09:15:00Z".into(),
    });
    d.pids = vec![4242, 4243];
    d.log_file = Some("/var/log/procman/web.log".into());
    d.log_bytes = 12_400;
    d.restarts_by_cause = BTreeMap::from([("exit".to_string(), 2)]);
    let status = crate::cli::status::describe(&d, now(), false);
    app.apply(News::Detail(Box::new(d)));
    let b = draw(&mut app, 100, 26);
    snapshot("detail", &b);
    let screen = text(&b);
    for line in status.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            screen.contains(line.trim_end()),
            "{line:?} missing:\n{screen}"
        );
    }
}

#[test]
fn a_lost_manager_is_said_in_the_header_and_a_prompt_on_the_bottom_line() {
    let mut app = sample(true);
    app.apply(News::Lost("nothing answers".into()));
    assert_eq!(app.link, Link::Lost("nothing answers".into()));
    assert!(app.lost_at.is_some(), "uptimes stop");
    // Lost 30 s before the screen's time: the uptime says so.
    app.lost_at = Some(now() - std::time::Duration::from_secs(30));
    key(&mut app, KeyCode::Char('K'));
    let b = draw(&mut app, 100, 26);
    snapshot("lost-and-signal-prompt", &b);
}

#[test]
fn a_search_marks_its_match_and_the_log_scrolls() {
    let mut app = sample(true);
    draw(&mut app, 100, 26);
    key(&mut app, KeyCode::Char('?'));
    typed(&mut app, "request 3 ");
    key(&mut app, KeyCode::Enter);
    let b = draw(&mut app, 100, 26);
    snapshot("search", &b);
    let (x, y) = find(&b, "request 3 served");
    assert_eq!(b[(x, y)].bg, Color::Yellow);
}

#[test]
fn any_size_draws_without_a_panic() {
    for (w, h) in [(0, 0), (1, 1), (20, 5), (40, 10), (80, 3), (300, 100)] {
        let mut app = sample(true);
        key(&mut app, KeyCode::Enter);
        draw(&mut app, w, h);
        key(&mut app, KeyCode::Esc);
        draw(&mut app, w, h);
    }
    let mut app = sample(true);
    snapshot("narrow", &draw(&mut app, 48, 14));
}

#[test]
fn a_childs_escape_sequences_reach_the_screen_as_text() {
    let mut app = sample(true);
    let generation = app.pane.generation;
    let evil = super::super::pane::printable("\x1b[2J\x1b]0;owned\x07bell\ttab\r");
    app.apply(News::Log(generation, vec![evil]));
    let b = draw(&mut app, 100, 26);
    let screen = text(&b);
    assert!(
        screen.contains("^[[2J^[]0;owned^Gbell    tab^M"),
        "{screen}"
    );
    assert!(!screen.contains('\x1b'));
}
