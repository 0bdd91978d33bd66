//! Everything the view shows, and what keys and news from the manager do
//! to it. Nothing here waits or talks to the manager: a key gives back a
//! [`Command`] for the session to carry out, and the session's tasks
//! report back as [`News`].

use std::time::{Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use procman_api::client::Action;
use procman_api::{Event, Process, ProcessDetail};

use super::board::Board;
use super::pane::{Pane, Source};

/// What the session is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Act(String, Action),
    Signal(String, String),
    /// Read the process's detail (and again while it is shown).
    Detail(String),
    /// Follow another log (the pane was reset for `generation`).
    Follow(Source, u64),
    /// Read the whole list again (an event of a process the table does
    /// not have: a reload added it).
    WholeList,
    /// Give the terminal back and stop, as Ctrl-Z does to a shell's job.
    Suspend,
    /// Follow no log (no process is selected).
    Unfollow,
    Quit,
}

/// What the session's tasks report.
#[derive(Debug)]
pub enum News {
    /// The manager's list: the truth about every row.
    List(Vec<Process>),
    /// Some rows read again, with their usage.
    Rows(Vec<Process>),
    /// A read failed while the stream stays open (a frozen manager): why.
    Stalled(String),
    /// The manager found again with a new token (taken by the session).
    Relocated(procman_api::client::Client),
    Event(Event, Instant),
    /// The event stream fell behind by this many; a list follows.
    Lagged(u64),
    /// The manager no longer answers; why. Reconnecting goes on.
    Lost(String),
    /// Lines of log stream `generation`.
    Log(u64, Vec<String>),
    /// Stream `generation` cannot be followed: why.
    LogNote(u64, String),
    Detail(Box<ProcessDetail>),
    /// An action ended: what to say, and whether it failed.
    Done(String, bool),
}

/// The prompt open at the bottom line, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Filter the table by id.
    Filter,
    /// Search the log pane.
    Search,
    /// Send a signal to the selected process.
    Signal,
}

#[derive(Debug)]
pub struct Prompt {
    pub ask: Ask,
    pub text: String,
    /// The name filter before the prompt opened (Esc puts it back).
    before: String,
}

/// Whether the manager answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Up,
    /// The connection is gone: why (reconnecting every second).
    Lost(String),
    /// Connected, but a read failed (a frozen manager): why.
    Stalled(String),
}

#[derive(Debug)]
pub struct App {
    pub board: Board,
    pub pane: Pane,
    /// The process whose detail is shown instead of the table, and the
    /// detail once read.
    pub detail: Option<(String, Option<Box<ProcessDetail>>)>,
    pub prompt: Option<Prompt>,
    /// The last thing said (an action's result), and whether it is an
    /// error.
    pub message: Option<(String, bool)>,
    pub link: Link,
    /// Where the manager is: `unix:/path` or `http://host:port`.
    pub endpoint: String,
    pub color: bool,
    /// Height of the log pane's text, as last drawn (for paging and
    /// searching).
    pub pane_height: usize,
    /// Rows of the table, as last drawn (for paging and for what is read
    /// again), and the first one shown.
    pub table_height: usize,
    pub table_offset: usize,
    /// When the manager stopped answering: uptimes stop there.
    pub lost_at: Option<SystemTime>,
    /// Lines of the detail scrolled past.
    pub detail_scroll: u16,
    /// Events applied since the last draw, with when each arrived (the
    /// session's trace of event-to-screen latency).
    pub fresh: Vec<(u64, Instant)>,
}

impl App {
    pub fn new(endpoint: String, color: bool) -> App {
        App {
            board: Board::default(),
            pane: Pane::default(),
            detail: None,
            prompt: None,
            message: None,
            link: Link::Up,
            endpoint,
            color,
            pane_height: 10,
            table_height: 10,
            table_offset: 0,
            lost_at: None,
            detail_scroll: 0,
            fresh: Vec::new(),
        }
    }

    /// The log the pane should follow now: the selected process's, or
    /// every one's.
    pub fn wanted_source(&self, all: bool) -> Option<Source> {
        match all {
            true => Some(Source::All),
            false => self.board.selected().map(|id| Source::One(id.to_string())),
        }
    }

    /// Applies what a task reported; returns a command when the news calls
    /// for one (the list made the followed process appear).
    pub fn apply(&mut self, news: News) -> Option<Command> {
        match news {
            News::List(rows) => {
                self.board.replace(rows);
                self.lost_at = None;
                // A detail of a process the manager no longer has (a
                // reload removed it) closes.
                if let Some((id, _)) = &self.detail {
                    if self.board.get(id).is_none() {
                        let said = format!("{id} is no longer in the manager's config");
                        self.detail = None;
                        self.say(said, true);
                    }
                }
                let all = self.pane.source == Some(Source::All);
                let want = self.wanted_source(all);
                match std::mem::replace(&mut self.link, Link::Up) {
                    Link::Lost(_) => {
                        self.say("connected again".to_string(), false);
                        // The old stream ended with the manager: again.
                        return self.follow(want);
                    }
                    Link::Stalled(_) => self.say("the manager answers again".to_string(), false),
                    Link::Up => {}
                }
                if want != self.pane.source {
                    return self.follow(want);
                }
            }
            News::Rows(rows) => {
                self.board.update(rows);
                if let Link::Stalled(_) = self.link {
                    self.link = Link::Up;
                    self.lost_at = None;
                    self.say("the manager answers again".to_string(), false);
                }
            }
            News::Stalled(why) => {
                if self.link == Link::Up {
                    self.lost_at = Some(SystemTime::now());
                }
                if !matches!(self.link, Link::Lost(_)) {
                    self.link = Link::Stalled(why);
                }
            }
            // The session takes it before it gets here.
            News::Relocated(_) => {}
            News::Event(e, at) => {
                let seq = e.seq;
                match self.board.apply(&e) {
                    true => self.fresh.push((seq, at)),
                    false => return Some(Command::WholeList),
                }
            }
            News::Lagged(n) => {
                self.say(format!("{n} events missed; the table was read again"), true)
            }
            News::Lost(why) => {
                if self.link == Link::Up {
                    self.lost_at = Some(SystemTime::now());
                }
                self.link = Link::Lost(why);
            }
            News::Log(generation, lines) => self.pane.push(generation, lines),
            News::LogNote(generation, note) => {
                if generation == self.pane.generation {
                    self.pane.note = Some(note);
                }
            }
            News::Detail(d) => {
                if let Some((id, shown)) = &mut self.detail {
                    if *id == d.process.id {
                        *shown = Some(d);
                    }
                }
            }
            News::Done(text, failed) => self.say(text, failed),
        }
        None
    }

    pub fn say(&mut self, text: String, error: bool) {
        self.message = Some((text, error));
    }

    /// The processes on screen: the table's rows in view, or the one
    /// whose detail is shown.
    pub fn in_view(&self) -> Vec<String> {
        if let Some((id, _)) = &self.detail {
            return vec![id.clone()];
        }
        self.board
            .shown()
            .skip(self.table_offset)
            .take(self.table_height)
            .map(|p| p.id.clone())
            .collect()
    }

    /// Resets the pane for `source` and asks the session to follow it.
    fn follow(&mut self, source: Option<Source>) -> Option<Command> {
        let Some(source) = source else {
            // No process to follow (none left, or none shown): none.
            if self.pane.source.is_some() {
                self.pane.close();
                return Some(Command::Unfollow);
            }
            return None;
        };
        let generation = self.pane.open(source.clone());
        Some(Command::Follow(source, generation))
    }

    /// After the selection moved: the pane follows the new process,
    /// unless it shows every process.
    fn reselect(&mut self) -> Option<Command> {
        match &self.pane.source {
            Some(Source::All) => None,
            _ => {
                let want = self.wanted_source(false);
                match want == self.pane.source {
                    true => None,
                    false => self.follow(want),
                }
            }
        }
    }

    /// What a key does.
    pub fn key(&mut self, key: KeyEvent) -> Option<Command> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d')) {
            return Some(Command::Quit);
        }
        if ctrl && key.code == KeyCode::Char('z') {
            return Some(Command::Suspend);
        }
        if self.prompt.is_some() {
            return self.prompt_key(key);
        }
        if self.detail.is_some() {
            return self.detail_key(key);
        }
        let selected = self.board.selected().map(str::to_string);
        let act = |action| selected.clone().map(|id| Command::Act(id, action));
        let page = self.table_height.max(1) as isize;
        match key.code {
            KeyCode::Char('q') => Some(Command::Quit),
            KeyCode::Esc => {
                // Esc clears a filter before it quits nothing.
                if !self.board.name_filter.is_empty() {
                    self.board.name_filter.clear();
                    self.board.refilter();
                    return self.reselect();
                }
                None
            }
            KeyCode::Up | KeyCode::Char('k') => self.moved(-1),
            KeyCode::Down | KeyCode::Char('j') => self.moved(1),
            KeyCode::PageUp => self.moved(-page),
            KeyCode::PageDown => self.moved(page),
            KeyCode::Home | KeyCode::Char('g') => {
                self.board.move_to_end(false);
                self.reselect()
            }
            KeyCode::End | KeyCode::Char('G') => {
                self.board.move_to_end(true);
                self.reselect()
            }
            KeyCode::Char('s') => act(Action::Start),
            KeyCode::Char('x') => act(Action::Stop),
            KeyCode::Char('r') => act(Action::Restart),
            KeyCode::Char('K') if selected.is_some() => self.ask(Ask::Signal, "TERM"),
            KeyCode::Char('/') => {
                let text = self.board.name_filter.clone();
                self.ask(Ask::Filter, &text)
            }
            KeyCode::Char('f') => {
                self.board.state_filter = self.board.state_filter.next();
                self.board.refilter();
                self.reselect()
            }
            KeyCode::Char('?') => self.ask(Ask::Search, ""),
            KeyCode::Char('n') => self.step(false),
            KeyCode::Char('N') => self.step(true),
            KeyCode::Char('a') => {
                let all = self.pane.source != Some(Source::All);
                self.follow(self.wanted_source(all))
            }
            KeyCode::Char('u') => {
                self.pane
                    .scroll_by(self.pane_height as isize / 2, self.pane_height);
                None
            }
            KeyCode::Char('d') => {
                self.pane
                    .scroll_by(-(self.pane_height as isize / 2), self.pane_height);
                // Back at the bottom of a pane that let lines go: the
                // newest again.
                match (self.pane.scroll, self.pane.skipped) {
                    (0, 1..) => self.follow(self.pane.source.clone()),
                    _ => None,
                }
            }
            KeyCode::Char('F') => match self.pane.skipped {
                // Lines were let go while the pane was held: the stream
                // is opened again for the newest.
                0 => {
                    self.pane.scroll = 0;
                    None
                }
                _ => self.follow(self.pane.source.clone()),
            },
            KeyCode::Enter => {
                let id = selected?;
                self.detail = Some((id.clone(), None));
                self.detail_scroll = 0;
                Some(Command::Detail(id))
            }
            _ => None,
        }
    }

    fn moved(&mut self, by: isize) -> Option<Command> {
        self.board.move_by(by);
        self.reselect()
    }

    fn step(&mut self, newer: bool) -> Option<Command> {
        if self.pane.searched().is_some() && !self.pane.step(newer, self.pane_height) {
            self.say("no more matches".to_string(), false);
        }
        None
    }

    fn ask(&mut self, ask: Ask, text: &str) -> Option<Command> {
        self.prompt = Some(Prompt {
            ask,
            text: text.to_string(),
            before: self.board.name_filter.clone(),
        });
        None
    }

    fn detail_key(&mut self, key: KeyEvent) -> Option<Command> {
        let id = self.detail.as_ref().map(|(id, _)| id.clone())?;
        match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                self.detail = None;
                None
            }
            KeyCode::Char('s') => Some(Command::Act(id, Action::Start)),
            KeyCode::Char('x') => Some(Command::Act(id, Action::Stop)),
            KeyCode::Char('r') => Some(Command::Act(id, Action::Restart)),
            KeyCode::Char('K') => self.ask(Ask::Signal, "TERM"),
            KeyCode::Up | KeyCode::Char('k') => self.scroll_detail(-1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll_detail(1),
            KeyCode::PageUp => self.scroll_detail(-(self.table_height as i32)),
            KeyCode::PageDown => self.scroll_detail(self.table_height as i32),
            KeyCode::Home | KeyCode::Char('g') => {
                self.detail_scroll = 0;
                None
            }
            _ => None,
        }
    }

    /// Scrolls the detail by `by` lines (the view keeps it within the text).
    fn scroll_detail(&mut self, by: i32) -> Option<Command> {
        let to = (i32::from(self.detail_scroll) + by).clamp(0, i32::from(u16::MAX));
        self.detail_scroll = to as u16;
        None
    }

    fn prompt_key(&mut self, key: KeyEvent) -> Option<Command> {
        let prompt = self.prompt.as_mut()?;
        match key.code {
            KeyCode::Esc => {
                let prompt = self.prompt.take()?;
                if prompt.ask == Ask::Filter {
                    // The filter as it was before typing.
                    self.board.name_filter = prompt.before;
                    self.board.refilter();
                    return self.reselect();
                }
                None
            }
            KeyCode::Backspace => {
                prompt.text.pop();
                self.typed()
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                prompt.text.clear();
                self.typed()
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                prompt.text.push(c);
                self.typed()
            }
            KeyCode::Enter => {
                let Prompt { ask, text, .. } = self.prompt.take()?;
                match ask {
                    Ask::Filter => self.reselect(),
                    Ask::Search => {
                        self.pane.search(&text, self.pane_height);
                        match (text.is_empty(), self.pane.current()) {
                            (true, _) => self.message = None,
                            (false, None) => self.say(format!("not found: {text}"), true),
                            (false, Some(_)) => {
                                let n = self.pane.matches();
                                let lines = if n == 1 {
                                    "line matches"
                                } else {
                                    "lines match"
                                };
                                self.say(format!("{n} {lines} (n: older, N: newer)"), false)
                            }
                        }
                        None
                    }
                    Ask::Signal => {
                        let id = match &self.detail {
                            Some((id, _)) => Some(id.clone()),
                            None => self.board.selected().map(str::to_string),
                        }?;
                        let signal = text.trim().to_string();
                        if signal.is_empty() {
                            self.say("no signal sent".to_string(), false);
                            return None;
                        }
                        Some(Command::Signal(id, signal))
                    }
                }
            }
            _ => None,
        }
    }

    /// The filter follows what is typed, as it is typed.
    fn typed(&mut self) -> Option<Command> {
        let prompt = self.prompt.as_ref()?;
        if prompt.ask == Ask::Filter {
            self.board.name_filter = prompt.text.clone();
            self.board.refilter();
        }
        None
    }
}
