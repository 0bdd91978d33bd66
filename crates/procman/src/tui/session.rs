//! The view's loop: keys and resizes from the terminal, news from the
//! manager, a tick for the uptimes, and the signals that end it; one draw
//! after each batch of whatever came.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{Event as Term, EventStream};
use futures_util::StreamExt as _;
use procman_api::client::{Action, Client};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::app::{App, Command, News};
use super::feed;
use super::screen::Screen;
use super::view;

/// How often the screen is drawn with nothing new (uptimes move on).
const TICK: Duration = Duration::from_secs(1);
/// A detail shown is read again this often.
const DETAIL_EVERY: Duration = Duration::from_secs(2);

/// Why the loop ended.
pub enum End {
    /// `q`, Ctrl-C, or a signal to end.
    Quit,
    /// The terminal's input or output failed (it went away).
    Terminal(std::io::Error),
}

/// Runs the view until it is quit. `first` is the list read before the
/// screen was taken. `trace` gets one line per event drawn: its number,
/// the microseconds from its arrival to the end of the draw that showed
/// it, and that end on CLOCK_MONOTONIC in microseconds.
pub async fn run(
    screen: &mut Screen,
    mut client: Client,
    mut app: App,
    first: Vec<procman_api::Process>,
    interval: Option<Duration>,
    relocate: feed::Relocate,
    mut trace: Option<BufWriter<File>>,
) -> End {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut log: Option<JoinHandle<()>> = None;
    let wanted = std::sync::Arc::new(feed::Wanted::default());
    if let Some(cmd) = app.apply(News::List(first)) {
        carry_out(&client, &tx, &wanted, cmd, &mut log);
    }
    let link = feed::link(
        client.clone(),
        tx.clone(),
        interval,
        wanted.clone(),
        relocate,
    );
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut detail_tick = tokio::time::interval(DETAIL_EVERY);
    let signals = [
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::interrupt(),
        SignalKind::quit(),
        SignalKind::from_raw(libc::SIGTSTP),
        SignalKind::from_raw(libc::SIGCONT),
    ]
    .map(signal);
    let [Ok(mut term), Ok(mut hup), Ok(mut int), Ok(mut quit), Ok(mut tstp), Ok(mut cont)] =
        signals
    else {
        return End::Terminal(std::io::Error::other(
            "cannot watch the signals that end the view",
        ));
    };
    let end = loop {
        if let Err(e) = screen
            .terminal
            .draw(|f| view::draw(f, &mut app, SystemTime::now()))
        {
            break End::Terminal(e);
        }
        wanted.in_view(app.in_view());
        if let Some(t) = trace.as_mut() {
            let drawn = Instant::now();
            let clock = monotonic_micros();
            for (seq, at) in app.fresh.drain(..) {
                let _ = writeln!(t, "{seq} {} {clock}", drawn.duration_since(at).as_micros());
            }
            let _ = t.flush();
        } else {
            app.fresh.clear();
        }
        let cmds: Vec<Command> = tokio::select! {
            key = keys.next() => {
                // This key, and whatever else is already there (a paste, a
                // held key): one draw for all of them.
                let mut cmds = Vec::new();
                let mut next = Some(key);
                let mut failed = None;
                while let Some(item) = next {
                    match item {
                        Some(Ok(Term::Key(k))) => {
                            test_panic(&k);
                            cmds.extend(app.key(k));
                        }
                        Some(Ok(Term::Resize(..))) => failed = screen.refit().err(),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => failed = Some(e),
                        None => failed = Some(std::io::Error::other("the terminal's input ended")),
                    }
                    let stop = matches!(cmds.last(), Some(Command::Quit | Command::Suspend));
                    if failed.is_some() || stop {
                        break;
                    }
                    next = tokio::time::timeout(Duration::ZERO, keys.next()).await.ok();
                }
                if let Some(e) = failed {
                    break End::Terminal(e);
                }
                cmds
            }
            news = rx.recv() => {
                let mut cmds = Vec::new();
                let mut next = news;
                // Everything that came at once, then one draw.
                while let Some(n) = next {
                    match n {
                        // A new token read: every request from now on.
                        News::Relocated(c) => client = c,
                        n => cmds.extend(app.apply(n)),
                    }
                    next = rx.try_recv().ok();
                }
                cmds
            }
            _ = tick.tick() => Vec::new(),
            _ = detail_tick.tick() => app.detail.iter().map(|(id, _)| Command::Detail(id.clone())).collect(),
            _ = term.recv() => break End::Quit,
            _ = hup.recv() => break End::Quit,
            _ = int.recv() => break End::Quit,
            _ = quit.recv() => break End::Quit,
            _ = tstp.recv() => vec![Command::Suspend],
            _ = cont.recv() => {
                // Continued after a stop the view did not make (SIGSTOP):
                // the shell may have changed the terminal meanwhile.
                if let Err(e) = screen.resume() {
                    break End::Terminal(e);
                }
                Vec::new()
            }
        };
        let mut ended = None;
        for cmd in cmds {
            match cmd {
                Command::Suspend => {
                    if let Err(e) = screen.suspend() {
                        ended = Some(End::Terminal(e));
                        break;
                    }
                }
                cmd => {
                    if carry_out(&client, &tx, &wanted, cmd, &mut log) {
                        ended = Some(End::Quit);
                        break;
                    }
                }
            }
        }
        if let Some(end) = ended {
            break end;
        }
    };
    link.abort();
    if let Some(l) = log {
        l.abort();
    }
    end
}

/// Starts what `cmd` asks; true when it asks to quit.
fn carry_out(
    client: &Client,
    tx: &feed::Tx,
    wanted: &feed::Wanted,
    cmd: Command,
    log: &mut Option<JoinHandle<()>>,
) -> bool {
    match cmd {
        Command::Quit => return true,
        // The loop suspends (it holds the screen).
        Command::Suspend => {}
        Command::Unfollow => {
            if let Some(old) = log.take() {
                old.abort();
            }
        }
        Command::WholeList => wanted.whole_list(),
        Command::Act(id, action) => {
            let doing = match action {
                Action::Start => "starting",
                Action::Stop => "stopping",
                Action::Restart => "restarting",
            };
            let _ = tx.send(News::Done(format!("{doing} {id}…"), false));
            feed::act(client.clone(), tx.clone(), id, action);
        }
        Command::Signal(id, sig) => feed::signal(client.clone(), tx.clone(), id, sig),
        Command::Detail(id) => feed::detail(client.clone(), tx.clone(), id),
        Command::Follow(source, generation) => {
            if let Some(old) = log.take() {
                old.abort();
            }
            *log = Some(feed::log(client.clone(), tx.clone(), source, generation));
        }
    }
    false
}

/// In a debug build with `PROCMAN_TUI_TEST_PANIC` set, `P` panics: the
/// tests check that a panic gives the terminal back.
fn test_panic(key: &crossterm::event::KeyEvent) {
    if cfg!(debug_assertions)
        && key.code == crossterm::event::KeyCode::Char('P')
        && std::env::var_os("PROCMAN_TUI_TEST_PANIC").is_some()
    {
        panic!("a panic asked for by PROCMAN_TUI_TEST_PANIC");
    }
}

/// CLOCK_MONOTONIC in microseconds (the trace's clock, which a benchmark
/// in another process can read too).
fn monotonic_micros() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u128 * 1_000_000 + t.tv_nsec as u128 / 1000
}
