//! The terminal as the view uses it: raw mode on the alternate screen,
//! given back on every way out (drop, panic, suspend), taken again after
//! a suspend, and drawn at most [`MAX_WIDTH`]×[`MAX_HEIGHT`] cells (a
//! larger terminal shows the view in its top-left corner: the view keeps
//! two buffers of about 100 bytes a cell, and a 10,000×10,000 terminal
//! would cost gigabytes).

use std::io::{self, Stdout};

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

/// The largest area drawn.
pub const MAX_WIDTH: u16 = 512;
pub const MAX_HEIGHT: u16 = 256;

pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Takes the terminal (and makes a panic give it back).
    pub fn take() -> io::Result<Screen> {
        hook_panics();
        enter()?;
        let area = fitted()?;
        let terminal = Terminal::with_options(
            CrosstermBackend::new(io::stdout()),
            TerminalOptions {
                viewport: Viewport::Fixed(area),
            },
        )?;
        Ok(Screen { terminal })
    }

    /// Draws at the terminal's size now (after a resize), from scratch.
    pub fn refit(&mut self) -> io::Result<()> {
        let area = fitted()?;
        // Clears the screen and forgets what was drawn: all is drawn anew.
        self.terminal.resize(area)
    }

    /// Gives the terminal back and stops the process, as Ctrl-Z does to a
    /// job; once continued (`fg`), takes it again.
    pub fn suspend(&mut self) -> io::Result<()> {
        restore();
        // SIGSTOP, not SIGTSTP: the view handles SIGTSTP (to come here).
        let me = rustix::process::getpid();
        let _ = rustix::process::kill_process(me, rustix::process::Signal::STOP);
        self.resume()
    }

    /// Takes the terminal again (after a stop, whoever made it).
    pub fn resume(&mut self) -> io::Result<()> {
        enter()?;
        self.refit()
    }

    pub fn give_back(&mut self) {
        restore();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Raw mode, the alternate screen, cleared (by hand: ratatui's `clear`
/// asks the terminal where its cursor is, and a terminal that does not
/// answer, such as a pty nobody reads, would fail after 2 s), no cursor.
fn enter() -> io::Result<()> {
    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        Clear(ClearType::All),
        Hide
    )
}

/// The terminal's area, within the largest drawn.
fn fitted() -> io::Result<Rect> {
    let (width, height) = crossterm::terminal::size()?;
    Ok(Rect::new(
        0,
        0,
        width.min(MAX_WIDTH),
        height.min(MAX_HEIGHT),
    ))
}

/// Cooked mode, the main screen, the cursor; safe to do twice.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

/// A panic anywhere (the loop, a task) gives the terminal back, prints
/// through the hook before it, and ends the view with Rust's code for a
/// panic (a task's panic would otherwise leave the view drawing over a
/// restored terminal).
fn hook_panics() {
    let before = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        before(info);
        std::process::exit(101);
    }));
}
