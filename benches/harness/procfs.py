"""What the harness reads from /proc: the processes carrying a run's marker,
their CPU ticks and memory, and whether a PID is still alive."""
import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def proc_stat(pid):
    s = read(f"/proc/{pid}/stat")
    if s is None:
        return None
    rest = s[s.rindex(")") + 2:].split()
    # rest[0]=state, rest[11]=utime, rest[12]=stime
    return rest[0], int(rest[11]) + int(rest[12])


def tagged_pids(marker, exclude_exe=None):
    """PIDs whose command line or working directory contains `marker`."""
    me = {os.getpid(), os.getppid()}
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        if pid in me:
            continue
        cmd = read(f"/proc/{pid}/cmdline", "rb")
        if cmd is None:
            continue
        hit = marker.encode() in cmd
        if not hit:
            try:
                hit = marker in os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                pass
        if hit:
            if exclude_exe:
                try:
                    if os.readlink(f"/proc/{pid}/exe") == exclude_exe:
                        continue
                except OSError:
                    pass
            out.append(pid)
    return out


def mem_cpu(pids):
    """(rss_bytes, pss_bytes, cpu_ticks, nprocs) summed over pids (live ones)."""
    rss = pss = ticks = n = 0
    for pid in pids:
        st = proc_stat(pid)
        if st is None or st[0] == "Z":
            continue
        n += 1
        ticks += st[1]
        status = read(f"/proc/{pid}/status") or ""
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) * 1024
        roll = read(f"/proc/{pid}/smaps_rollup") or ""
        for line in roll.splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
    return rss, pss, ticks, n


def cpu_ticks(pids):
    t = {}
    for pid in pids:
        st = proc_stat(pid)
        if st:
            t[pid] = st[1]
    return t


def cpu_delta_s(before, after):
    return sum(after[p] - before[p] for p in after if p in before) / CLK_TCK


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def wait_gone(pids, deadline, poll_s=0.002):
    """Wait until none of `pids` is alive (zombies count as gone) or the
    monotonic `deadline` passes; return the PIDs still alive (empty: all
    gone). A PID found gone is not read again, so a poll costs one read of
    the first PID still alive, not N reads: the moment the last one goes is
    seen within `poll_s` whatever N is."""
    pids = list(pids)
    i = 0
    while i < len(pids):
        if not alive(pids[i]):
            i += 1
            continue
        if time.monotonic() >= deadline:
            return [p for p in pids[i:] if alive(p)]
        time.sleep(poll_s)
    return []
