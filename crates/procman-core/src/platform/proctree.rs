//! Descendants of processes, from `/proc` (the fallback when no cgroup is
//! available to hold a process tree). Blocking: run it on the platform
//! worker, never on the async runtime.

use std::collections::HashMap;

use super::procstat::Stat;

/// The stat of every process now visible in `/proc`.
fn everyone() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Stat::read(pid).ok().flatten())
        .collect()
}

/// Every descendant of the `roots` (not the roots themselves), each with
/// the parent it was seen under, parents before children.
///
/// Walks down from the roots through `/proc/<pid>/task/<tid>/children`,
/// so the cost follows the size of the tree, not of the machine (a
/// manager sampling 500 trees would otherwise read every process's stat
/// 500 times). Where the kernel lacks those files (built without
/// `CONFIG_PROC_CHILDREN`), one scan of all `/proc` instead.
pub(crate) fn descendants(roots: &[u32]) -> Vec<(u32, u32)> {
    let mut by_file = Some(Vec::new());
    let mut queue: Vec<u32> = roots.to_vec();
    while let (Some(out), Some(p)) = (by_file.as_mut(), queue.pop()) {
        match children_file(p) {
            Kids::Listed(kids) => {
                for k in kids {
                    if !roots.contains(&k) && !out.iter().any(|&(seen, _)| seen == k) {
                        out.push((k, p));
                        queue.push(k);
                    }
                }
            }
            Kids::Gone => {}
            Kids::Unsupported => by_file = None,
        }
    }
    by_file.unwrap_or_else(|| descendants_by_scan(roots))
}

enum Kids {
    Listed(Vec<u32>),
    /// The process is gone: no children to find under it.
    Gone,
    /// The kernel has no `children` files.
    Unsupported,
}

/// The children of every thread of `pid`.
fn children_file(pid: u32) -> Kids {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Kids::Gone;
    };
    let mut kids = Vec::new();
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(text) => kids.extend(
                text.split_ascii_whitespace()
                    .filter_map(|k| k.parse::<u32>().ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && task.path().exists() => {
                return Kids::Unsupported
            }
            Err(_) => {}
        }
    }
    Kids::Listed(kids)
}

fn descendants_by_scan(roots: &[u32]) -> Vec<(u32, u32)> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for s in everyone() {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut out = Vec::new();
    let mut queue: Vec<u32> = roots.to_vec();
    while let Some(p) = queue.pop() {
        if let Some(kids) = children.get(&p) {
            for &k in kids {
                if !roots.contains(&k) && !out.iter().any(|&(seen, _)| seen == k) {
                    out.push((k, p));
                    queue.push(k);
                }
            }
        }
    }
    out
}

/// The children of process `parent` now (for the manager: its own children
/// and the orphans it adopted as a subreaper), zombies left out.
///
/// From `parent`'s own `children` files, so the cost follows its children,
/// not the machine (the manager's shutdown asks this once, on a host that
/// may run thousands of other processes); one scan of `/proc` where the
/// kernel lacks those files.
pub(crate) fn children(parent: u32) -> Vec<u32> {
    let listed = match children_file(parent) {
        Kids::Listed(kids) => kids,
        Kids::Gone => return Vec::new(),
        Kids::Unsupported => {
            return everyone()
                .into_iter()
                .filter(|s| s.ppid == parent && !s.is_zombie())
                .map(|s| s.pid)
                .collect()
        }
    };
    listed
        .into_iter()
        .filter(|&pid| {
            Stat::read(pid)
                .ok()
                .flatten()
                .is_some_and(|s| s.ppid == parent && !s.is_zombie())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawned_sleep_is_a_descendant_and_a_child() {
        let spec = crate::testing::sh("exec /bin/sleep 30");
        let tree = crate::platform::TreeRoot::without_cgroups().tree("t");
        let spawned = crate::platform::spawn_blocking(spec, &tree).expect("spawn sleep");
        let pid = spawned.child.pid();
        let found = descendants(&[std::process::id()]);
        let scanned = descendants_by_scan(&[std::process::id()]);
        let kids = children(std::process::id());
        let _ = spawned.child.signal(crate::outcome::Signal::KILL);
        let _ = spawned.exit.blocking_recv();
        assert!(found.contains(&(pid, std::process::id())), "{found:?}");
        assert!(scanned.contains(&(pid, std::process::id())), "{scanned:?}");
        assert!(kids.contains(&pid));
    }
}
