//! Using the machine for real, for the tests of resource limits: memory
//! (`hog`), CPU (`spin`), and the descriptor limit we were started with
//! (`rlimits`). Processes (`fork-loop`) are in `tree`.
//!
//! Nothing here lets the kernel off: every page `hog` allocates is
//! written (so it is resident and charged to our memory cgroup, not a
//! promise of the allocator), and `spin` runs without ever sleeping.

use std::io;
use std::thread;
use std::time::Duration;

use crate::out::say;
use crate::signals::sleep_forever;

/// Written into every page: the smallest page size Linux has, so a write
/// every this many bytes touches every page whatever the real size.
const PAGE: usize = 4096;

/// `hog MB [--step MB] [--interval DUR]`: allocates `mib` MiB, `step`
/// MiB at a time, writing every page; `allocated N` after each step (N:
/// MiB held so far), then `ready pid=N`, then holds it all forever.
pub fn hog(mib: u64, step: u64, interval: Option<Duration>) -> io::Result<u8> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut done = 0;
    while done < mib {
        let n = step.min(mib - done);
        held.push(touched(n)?);
        done += n;
        say!("allocated {done}");
        if let (Some(d), true) = (interval, done < mib) {
            thread::sleep(d);
        }
    }
    // The blocks must stay where the optimiser cannot prove them unused.
    std::hint::black_box(&held);
    say!("ready pid={}", std::process::id());
    sleep_forever()
}

/// `mib` MiB, every byte written: non-zero, so that no allocator or
/// compiler can turn it into a lazily zeroed mapping, and each page's
/// first bytes differ, so that no page can be merged with another.
fn touched(mib: u64) -> io::Result<Vec<u8>> {
    let bytes = usize::try_from(mib << 20)
        .map_err(|_| io::Error::other(format!("{mib} MiB does not fit in memory")))?;
    let mut block = Vec::new();
    block
        .try_reserve_exact(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, format!("{mib} MiB: {e}")))?;
    block.resize(bytes, 0xa5);
    for (i, page) in block.chunks_mut(PAGE).enumerate() {
        let mark = (i as u64).to_ne_bytes();
        let n = mark.len().min(page.len());
        page[..n].copy_from_slice(&mark[..n]);
    }
    Ok(std::hint::black_box(block))
}

/// `spin`: `ready pid=N`, then a busy loop forever (SIGTERM kills it).
pub fn spin() -> io::Result<u8> {
    say!("ready pid={}", std::process::id());
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// `rlimits [--stay]`: `nofile soft=S hard=H` (a number or `unlimited`),
/// then exit 0, or with `stay` `ready pid=N` and block.
pub fn rlimits(stay: bool) -> io::Result<u8> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let show = |v: libc::rlim_t| match v {
        libc::RLIM_INFINITY => "unlimited".to_string(),
        v => v.to_string(),
    };
    say!(
        "nofile soft={} hard={}",
        show(limit.rlim_cur),
        show(limit.rlim_max)
    );
    if !stay {
        return Ok(0);
    }
    say!("ready pid={}", std::process::id());
    sleep_forever()
}
