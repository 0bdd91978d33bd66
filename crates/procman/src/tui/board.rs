//! The process table as the view shows it: every row the manager listed,
//! kept up to date by its events (state, pid, run at once) and by the
//! list it sends back on request (restarts, health, last exit, usage).
//!
//! Rows stay in the manager's order (the config's); the selection follows
//! a process by id, so a row that moves (a filter, a reload) stays
//! selected.

use std::collections::HashMap;
use std::time::SystemTime;

use procman_api::{Event, Process};

/// Which states the table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    #[default]
    All,
    /// starting, running, stopping
    Up,
    /// registered, stopped, exited, failed
    Down,
    /// waiting, backoff, failed: what needs a look
    Trouble,
}

impl StateFilter {
    /// The next one, as `f` cycles them.
    pub fn next(self) -> StateFilter {
        match self {
            StateFilter::All => StateFilter::Up,
            StateFilter::Up => StateFilter::Down,
            StateFilter::Down => StateFilter::Trouble,
            StateFilter::Trouble => StateFilter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StateFilter::All => "all",
            StateFilter::Up => "up",
            StateFilter::Down => "down",
            StateFilter::Trouble => "trouble",
        }
    }

    fn admits(self, state: &str) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::Up => is_up(state),
            StateFilter::Down => matches!(state, "registered" | "stopped" | "exited" | "failed"),
            StateFilter::Trouble => matches!(state, "waiting" | "backoff" | "failed"),
        }
    }
}

/// Whether a run is under way in `state` (its uptime counts).
pub fn is_up(state: &str) -> bool {
    matches!(state, "starting" | "running" | "stopping")
}

/// The processes, the filters, and the selection.
#[derive(Debug, Default)]
pub struct Board {
    rows: Vec<Process>,
    index: HashMap<String, usize>,
    /// Indexes into `rows` of the rows the filters admit, in order.
    shown: Vec<usize>,
    selected: Option<String>,
    /// The selection's place among the shown rows, as last known.
    last_pos: usize,
    /// Substring of the id (case-insensitive); empty: every id.
    pub name_filter: String,
    pub state_filter: StateFilter,
}

impl Board {
    /// Takes the manager's list as the truth, keeping the selection (and
    /// the usage last read of a run still under way: the list has none).
    pub fn replace(&mut self, mut rows: Vec<Process>) {
        for row in rows.iter_mut().filter(|r| r.usage.is_none()) {
            if let Some(old) = self.index.get(&row.id).map(|&i| &self.rows[i]) {
                if old.runs == row.runs && is_up(&row.state) {
                    row.usage = old.usage.clone();
                }
            }
        }
        self.index = rows
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        self.rows = rows;
        self.refilter_from(self.last_pos);
    }

    /// Replaces the rows read again (a process the table does not have
    /// waits for the next whole list).
    pub fn update(&mut self, rows: Vec<Process>) {
        for row in rows {
            if let Some(&i) = self.index.get(&row.id) {
                self.rows[i] = row;
            }
        }
        self.refilter();
    }

    /// Applies one transition to its row; `false` when no row has its id
    /// (a process added by a reload: the next list brings it).
    pub fn apply(&mut self, e: &Event) -> bool {
        let Some(&i) = self.index.get(&e.process) else {
            return false;
        };
        let row = &mut self.rows[i];
        let new_run = e.run != row.runs && e.run > 0;
        row.state = e.to.clone();
        row.pid = e.pid;
        if new_run {
            row.runs = e.run;
            row.started_at = Some(e.at.clone());
        }
        // The policy's restart is the way into `starting` (the run's
        // number follows with its spawn).
        if e.to == "starting" && e.cause_kind == "policy_restart" {
            row.restarts += 1;
        }
        if !is_up(&e.to) {
            row.uptime_seconds = None;
            row.health = None;
            row.usage = None;
            row.pid = None;
        }
        // Waiting's reason is in the list only; say what the event says.
        row.waiting_reason = (e.to == "waiting").then(|| e.cause.clone());
        let was_shown = self.shown.contains(&i);
        if was_shown != self.admits(&self.rows[i]) {
            self.refilter();
        }
        true
    }

    fn admits(&self, p: &Process) -> bool {
        self.state_filter.admits(&p.state)
            && (self.name_filter.is_empty()
                || p.id
                    .to_lowercase()
                    .contains(&self.name_filter.to_lowercase()))
    }

    /// Recomputes the shown rows; the selection moves to the first shown
    /// row if its process is filtered out.
    pub fn refilter(&mut self) {
        self.refilter_from(self.selected_pos().unwrap_or(self.last_pos));
    }

    /// [`refilter`](Board::refilter); a selection gone (filtered out,
    /// removed) goes to the row now at `pos`, its place before (or the
    /// last), so that the user keeps their place in a long table.
    fn refilter_from(&mut self, pos: usize) {
        self.shown = (0..self.rows.len())
            .filter(|&i| self.admits(&self.rows[i]))
            .collect();
        let kept = self
            .selected
            .as_ref()
            .and_then(|id| self.index.get(id))
            .is_some_and(|i| self.shown.contains(i));
        if !kept {
            let at = pos.min(self.shown.len().saturating_sub(1));
            self.selected = self.shown.get(at).map(|&i| self.rows[i].id.clone());
        }
        self.last_pos = self.selected_pos().unwrap_or(0);
    }

    /// The rows the filters admit, in order.
    pub fn shown(&self) -> impl ExactSizeIterator<Item = &Process> {
        self.shown.iter().map(|&i| &self.rows[i])
    }

    pub fn shown_len(&self) -> usize {
        self.shown.len()
    }

    pub fn total(&self) -> usize {
        self.rows.len()
    }

    pub fn get(&self, id: &str) -> Option<&Process> {
        self.index.get(id).map(|&i| &self.rows[i])
    }

    /// The selected process's id.
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// Position of the selection among the shown rows.
    pub fn selected_pos(&self) -> Option<usize> {
        let i = self.index.get(self.selected.as_deref()?)?;
        self.shown.iter().position(|s| s == i)
    }

    /// Moves the selection by `delta` shown rows (clamped at both ends).
    pub fn move_by(&mut self, delta: isize) {
        if self.shown.is_empty() {
            return;
        }
        let last = self.shown.len() as isize - 1;
        let at = self.selected_pos().map_or(0, |p| p as isize);
        let to = (at + delta).clamp(0, last) as usize;
        self.selected = Some(self.rows[self.shown[to]].id.clone());
        self.last_pos = to;
    }

    /// Selects the first (`false`) or last (`true`) shown row.
    pub fn move_to_end(&mut self, last: bool) {
        let pick = match last {
            true => self.shown.last(),
            false => self.shown.first(),
        };
        self.selected = pick.map(|&i| self.rows[i].id.clone());
        self.last_pos = self.selected_pos().unwrap_or(0);
    }

    /// `(running, trouble)`: runs under way, and processes that failed,
    /// back off or wait.
    pub fn counts(&self) -> (usize, usize) {
        let up = self.rows.iter().filter(|p| is_up(&p.state)).count();
        let trouble = self
            .rows
            .iter()
            .filter(|p| StateFilter::Trouble.admits(&p.state))
            .count();
        (up, trouble)
    }
}

/// How long the run of `p` has been up at `now`, from its start time (the
/// list's `uptime_seconds` is as old as the list).
pub fn uptime(p: &Process, now: SystemTime) -> Option<f64> {
    if !is_up(&p.state) {
        return None;
    }
    let at = humantime::parse_rfc3339_weak(p.started_at.as_deref()?).ok()?;
    Some(now.duration_since(at).unwrap_or_default().as_secs_f64())
}
