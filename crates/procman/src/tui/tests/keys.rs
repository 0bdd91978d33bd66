//! What keys and news do to the app: commands, filters, selection, the
//! log pane's streams and its search.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use procman_api::client::Action;
use procman_api::Event;

use super::super::app::{Command, Link, News};
use super::super::board::StateFilter;
use super::super::pane::{Pane, Source, KEEP};
use super::screens::{key, process, sample, typed};

fn event(seq: u64, id: &str, from: &str, to: &str, cause_kind: &str, run: u32) -> Event {
    Event {
        seq,
        process: id.into(),
        from: from.into(),
        to: to.into(),
        cause: cause_kind.replace('_', " "),
        cause_kind: cause_kind.into(),
        pid: (to == "running").then_some(1000 + run),
        run,
        at: "2026-12-02T09:17:00Z".into(),
    }
}

#[test]
fn action_keys_name_the_selected_process() {
    let mut app = sample(true);
    assert_eq!(
        key(&mut app, KeyCode::Char('x')),
        Some(Command::Act("web".into(), Action::Stop))
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(
        key(&mut app, KeyCode::Char('s')),
        Some(Command::Act("worker".into(), Action::Start))
    );
    assert_eq!(
        key(&mut app, KeyCode::Char('r')),
        Some(Command::Act("worker".into(), Action::Restart))
    );
    assert_eq!(key(&mut app, KeyCode::Char('q')), Some(Command::Quit));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.key(ctrl_c), Some(Command::Quit));
}

#[test]
fn moving_the_selection_follows_the_new_process_log() {
    let mut app = sample(true);
    let before = app.pane.generation;
    let cmd = key(&mut app, KeyCode::Char('j'));
    assert_eq!(
        cmd,
        Some(Command::Follow(Source::One("worker".into()), before + 1))
    );
    assert!(app.pane.lines().is_empty(), "the old lines are gone");
    // Lines of the old stream are dropped.
    app.apply(News::Log(before, vec!["stale".into()]));
    assert!(app.pane.lines().is_empty());
    // Past the end: stays on the last row, follows nothing new.
    key(&mut app, KeyCode::End);
    assert_eq!(app.board.selected(), Some("api"));
    assert_eq!(key(&mut app, KeyCode::Down), None);
    // `a`: every process; moving then changes nothing of the pane.
    let all = key(&mut app, KeyCode::Char('a'));
    assert!(matches!(all, Some(Command::Follow(Source::All, _))));
    assert_eq!(key(&mut app, KeyCode::Up), None);
}

#[test]
fn the_signal_prompt_sends_what_was_typed() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Char('K'));
    for _ in 0..4 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "HUP");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Some(Command::Signal("web".into(), "HUP".into()))
    );
    assert!(app.prompt.is_none());
    // While a prompt is open, keys are text, not commands.
    key(&mut app, KeyCode::Char('K'));
    assert_eq!(key(&mut app, KeyCode::Char('q')), None);
    assert_eq!(key(&mut app, KeyCode::Esc), None);
    assert!(app.prompt.is_none());
}

#[test]
fn the_name_filter_applies_as_typed_and_esc_puts_it_back() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "WOR");
    assert_eq!(app.board.shown_len(), 1, "case does not matter");
    assert_eq!(app.board.selected(), Some("worker"));
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "xyz");
    assert_eq!(app.board.shown_len(), 0);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.board.name_filter, "WOR");
    assert_eq!(app.board.shown_len(), 1);
    // Esc with no prompt clears the filter.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.board.shown_len(), 4);
}

#[test]
fn the_state_filter_cycles_and_rows_move_in_and_out_with_events() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.board.state_filter, StateFilter::Up);
    let shown: Vec<_> = app.board.shown().map(|p| p.id.clone()).collect();
    assert_eq!(shown, ["web"]);
    app.apply(News::Event(
        event(1, "db", "stopped", "running", "start_requested", 1),
        Instant::now(),
    ));
    let shown: Vec<_> = app.board.shown().map(|p| p.id.clone()).collect();
    assert_eq!(shown, ["web", "db"]);
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.board.state_filter, StateFilter::Down);
    key(&mut app, KeyCode::Char('f'));
    let shown: Vec<_> = app.board.shown().map(|p| p.id.clone()).collect();
    assert_eq!(shown, ["worker", "api"], "trouble: failed and waiting");
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.board.shown_len(), 4);
}

#[test]
fn events_set_state_pid_run_and_count_policy_restarts() {
    let mut app = sample(true);
    let now = Instant::now();
    app.apply(News::Event(
        event(1, "worker", "backoff", "starting", "policy_restart", 4),
        now,
    ));
    app.apply(News::Event(
        event(2, "worker", "starting", "running", "ready", 5),
        now,
    ));
    let w = app.board.get("worker").expect("worker");
    assert_eq!(
        (w.state.as_str(), w.pid, w.runs, w.restarts),
        ("running", Some(1005), 5, 4)
    );
    app.apply(News::Event(
        event(3, "worker", "running", "stopped", "stop_requested", 5),
        now,
    ));
    let w = app.board.get("worker").expect("worker");
    assert_eq!((w.state.as_str(), w.pid, w.restarts), ("stopped", None, 4));
    // An unknown id (added by a reload): the whole list is read again.
    let cmd = app.apply(News::Event(
        event(4, "new", "registered", "running", "start_requested", 1),
        now,
    ));
    assert_eq!(cmd, Some(Command::WholeList));
    assert!(app.board.get("new").is_none());
    assert_eq!(app.fresh.len(), 3, "only applied events are traced");
    // The list is the truth.
    app.apply(News::List(vec![process("new", "running")]));
    assert_eq!(app.board.total(), 1);
    assert_eq!(app.board.selected(), Some("new"));
}

#[test]
fn a_list_after_a_lost_link_says_so_and_follows_the_log_again() {
    let mut app = sample(true);
    app.apply(News::Lost("nothing answers".into()));
    let g = app.pane.generation;
    let cmd = app.apply(News::List(vec![process("web", "running")]));
    assert_eq!(cmd, Some(Command::Follow(Source::One("web".into()), g + 1)));
    assert_eq!(app.message, Some(("connected again".into(), false)));
}

#[test]
fn the_pane_keeps_the_newest_lines_and_a_scrolled_view_stays_put() {
    let mut pane = Pane::default();
    let g = pane.open(Source::All);
    pane.push(g, (0..KEEP + 10).map(|i| format!("line {i}")));
    assert_eq!(pane.lines().len(), KEEP);
    assert_eq!(pane.dropped, 10);
    assert_eq!(
        pane.lines().back().map(String::as_str),
        Some(format!("line {}", KEEP + 9).as_str())
    );
    let mut pane = Pane::default();
    let g = pane.open(Source::All);
    pane.push(g, (0..100).map(|i| format!("line {i}")));
    pane.scroll_by(10, 20);
    let top: Vec<_> = pane.visible(20).map(|(_, l)| l.to_string()).collect();
    pane.push(g, ["line 100".to_string()]);
    let after: Vec<_> = pane.visible(20).map(|(_, l)| l.to_string()).collect();
    assert_eq!(top, after, "new lines do not move a scrolled view");
    pane.scroll_by(-1000, 20);
    assert_eq!(pane.scroll, 0);
    pane.scroll_by(1000, 20);
    assert_eq!(
        pane.scroll, 81,
        "no further than the oldest line at the top"
    );
}

#[test]
fn search_goes_from_the_newest_match_to_older_ones_and_back() {
    let mut pane = Pane::default();
    let g = pane.open(Source::All);
    pane.push(
        g,
        (0..50).map(|i| format!("{} line {i}", if i % 10 == 0 { "ERROR" } else { "ok" })),
    );
    pane.search("error", 5);
    assert_eq!(pane.current(), Some(40));
    assert_eq!(pane.matches(), 5);
    assert!(pane.step(false, 5));
    assert_eq!(pane.current(), Some(30));
    let shown: Vec<_> = pane.visible(5).map(|(i, _)| i).collect();
    assert!(shown.contains(&30), "{shown:?}");
    assert!(pane.step(true, 5));
    assert_eq!(pane.current(), Some(40));
    assert!(!pane.step(true, 5), "no newer match");
    while pane.step(false, 5) {}
    assert_eq!(pane.current(), Some(0));
    pane.search("", 5);
    assert_eq!(pane.current(), None);
}

#[test]
fn only_the_rows_in_view_are_read_again_and_a_list_keeps_their_usage() {
    let mut app = sample(true);
    app.table_height = 2;
    assert_eq!(app.in_view(), ["web", "worker"]);
    key(&mut app, KeyCode::End);
    super::screens::draw(&mut app, 100, 10);
    let view = app.in_view();
    assert!((1..4).contains(&app.table_height), "{}", app.table_height);
    assert_eq!(view.len(), app.table_height, "{view:?}");
    assert_eq!(view.last().map(String::as_str), Some("api"), "{view:?}");
    assert!(!view.contains(&"web".to_string()), "{view:?}");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.in_view(), ["api"], "the detail's process only");
    // Rows read again replace theirs; the others stay.
    let mut db = process("db", "running");
    db.restarts = 9;
    app.apply(News::Rows(vec![db, process("gone", "running")]));
    assert_eq!(app.board.get("db").map(|p| p.restarts), Some(9));
    assert_eq!(app.board.total(), 4);
    // A whole list has no usage: a run still under way keeps its own.
    let before = app.board.get("web").and_then(|p| p.usage.clone());
    assert!(before.is_some());
    let mut web = process("web", "running");
    web.runs = 3;
    app.apply(News::List(vec![web.clone()]));
    assert_eq!(app.board.get("web").and_then(|p| p.usage.clone()), before);
    web.runs = 4;
    app.apply(News::List(vec![web]));
    assert_eq!(
        app.board.get("web").and_then(|p| p.usage.clone()),
        None,
        "a new run"
    );
}

#[test]
fn a_list_without_the_selected_process_moves_the_log_and_closes_its_detail() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Enter);
    assert!(app.detail.is_some());
    let g = app.pane.generation;
    let cmd = app.apply(News::List(vec![
        process("db", "stopped"),
        process("api", "waiting"),
    ]));
    assert_eq!(cmd, Some(Command::Follow(Source::One("db".into()), g + 1)));
    assert!(app.detail.is_none(), "web's detail closed");
    assert_eq!(
        app.message,
        Some(("web is no longer in the manager's config".into(), true))
    );
    // Following every process stays so.
    key(&mut app, KeyCode::Char('a'));
    assert_eq!(app.apply(News::List(vec![process("api", "waiting")])), None);
}

#[test]
fn a_held_pane_keeps_its_lines_and_f_opens_the_stream_again() {
    let mut app = sample(true);
    let g = app.pane.generation;
    app.apply(News::Log(
        g,
        (0..KEEP).map(|i| format!("line {i}")).collect(),
    ));
    app.pane_height = 10;
    key(&mut app, KeyCode::Char('u'));
    let held: Vec<String> = app.pane.visible(10).map(|(_, l)| l.to_string()).collect();
    app.apply(News::Log(g, (0..500).map(|i| format!("new {i}")).collect()));
    let now: Vec<String> = app.pane.visible(10).map(|(_, l)| l.to_string()).collect();
    assert_eq!(held, now, "held lines stay in view");
    assert_eq!(app.pane.skipped, 500);
    let cmd = key(&mut app, KeyCode::Char('F'));
    assert_eq!(cmd, Some(Command::Follow(Source::One("web".into()), g + 1)));
    assert_eq!((app.pane.scroll, app.pane.skipped), (0, 0));
}

#[test]
fn a_frozen_manager_is_said_and_its_answer_clears_it() {
    let mut app = sample(true);
    app.apply(News::Stalled("timed out after 5s".into()));
    assert_eq!(app.link, Link::Stalled("timed out after 5s".into()));
    assert!(app.lost_at.is_some(), "uptimes stop");
    app.apply(News::Rows(vec![process("web", "running")]));
    assert_eq!(app.link, Link::Up);
    assert_eq!(
        app.message,
        Some(("the manager answers again".into(), false))
    );
    // A lost link stays lost until a whole list.
    app.apply(News::Lost("nothing answers".into()));
    app.apply(News::Stalled("timed out".into()));
    assert_eq!(app.link, Link::Lost("nothing answers".into()));
}

#[test]
fn the_detail_scrolls_within_its_text_and_ctrl_z_suspends() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Enter);
    for _ in 0..50 {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(app.detail_scroll, 50);
    super::screens::draw(&mut app, 100, 26);
    assert_eq!(app.detail_scroll, 0, "the text is short: nothing to scroll");
    let ctrl_z = KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL);
    assert_eq!(app.key(ctrl_z), Some(Command::Suspend));
}

#[test]
fn a_removed_selection_goes_to_its_neighbour_and_no_process_follows_no_log() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.board.selected(), Some("db"));
    let rows = ["web", "worker", "api"].map(|id| process(id, "running"));
    app.apply(News::List(rows.to_vec()));
    assert_eq!(app.board.selected(), Some("api"), "db's place, not the top");
    let cmd = app.apply(News::List(Vec::new()));
    assert_eq!(cmd, Some(Command::Unfollow));
    assert_eq!(app.pane.source, None);
    assert_eq!(app.pane.note.as_deref(), Some("no process selected"));
}

#[test]
fn ctrl_u_clears_a_prompt_and_bidi_overrides_are_shown_as_text() {
    let mut app = sample(true);
    key(&mut app, KeyCode::Char('K'));
    app.key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    typed(&mut app, "HUP");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Some(Command::Signal("web".into(), "HUP".into()))
    );
    let shown = super::super::pane::printable("a\u{202e}b\u{2066}c");
    assert_eq!(shown, "a\\u{202e}b\\u{2066}c");
}
