//! What the manager itself uses of the machine, for its metrics: CPU time
//! (`/proc/self/stat`, through [`procstat`](super::procstat)), resident
//! memory (`/proc/self/statm`) and open descriptors (`/proc/self/fd`).
//!
//! Three small reads of the manager's own files, whatever the number of
//! processes it supervises. Each figure is read on its own: one that cannot
//! be read (no `/proc`) is `None`, never a guess, and the others are kept.
//!
//! Small on purpose (below the usual 100 lines): it is the whole of one
//! concept, and `procstat` is about any process, not the manager's own.

use std::fs;

use super::procstat::Stat;

/// The manager's own usage, as of the moment [`Usage::own`] read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User plus system CPU time since the manager started.
    pub cpu_seconds: Option<f64>,
    /// Resident set size.
    pub resident_bytes: Option<u64>,
    /// Descriptors open in the manager (the one used to count them aside).
    pub open_fds: Option<u64>,
}

impl Usage {
    pub fn own() -> Usage {
        Usage {
            cpu_seconds: cpu_seconds(),
            resident_bytes: resident_bytes(),
            open_fds: open_fds(),
        }
    }
}

fn cpu_seconds() -> Option<f64> {
    let stat = Stat::read(std::process::id()).ok()??;
    let ticks = rustix::param::clock_ticks_per_second();
    (ticks > 0).then(|| (stat.utime + stat.stime) as f64 / ticks as f64)
}

/// `size resident shared …`, in pages.
fn resident_bytes() -> Option<u64> {
    let text = fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(rustix::param::page_size() as u64))
}

fn open_fds() -> Option<u64> {
    let entries = fs::read_dir("/proc/self/fd").ok()?;
    let listed = entries.filter(Result::is_ok).count() as u64;
    // The listing holds the descriptor that reads it.
    Some(listed.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_usage_is_read_and_follows_what_the_process_does() {
        let before = Usage::own();
        let cpu = before.cpu_seconds.expect("cpu time");
        assert!(cpu >= 0.0);
        let rss = before.resident_bytes.expect("resident memory");
        assert!(rss > 1 << 20, "a test binary holds more than 1 MiB: {rss}");
        before.open_fds.expect("descriptors");
        // Other tests of this binary open and close descriptors meanwhile,
        // so only a lower bound holds.
        let held: Vec<fs::File> = (0..16)
            .map(|_| fs::File::open("/dev/null").expect("open"))
            .collect();
        let after = Usage::own();
        assert!(after.open_fds.expect("descriptors") >= 16, "{after:?}");
        drop(held);
        // Spin a little: CPU time never goes backwards.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i ^ (x >> 3));
        }
        std::hint::black_box(x);
        assert!(Usage::own().cpu_seconds.expect("cpu time") >= cpu);
    }
}
