#!/usr/bin/env python3
"""The manager's memory with N idle processes, taken apart by mapping.

For each N (50, 500, 5000 by default), runs `procman run` on N `sleep 100000`
processes in the config of the harness's procman adapter (restart always,
`port: 0`, stdout and stderr captured raw into a file per process), waits
until all N are running and SETTLE_S more seconds, then sums over every
process of the manager (the manager and any helper process running the same
binary, found by walking its process tree; the supervised `sleep`s are not
counted) the figures of /proc/PID/smaps:

- RSS, and its anonymous and file-backed parts;
- heap: the `[heap]` mapping plus the anonymous mappings of 1 MiB and more
  (glibc's thread arenas); stacks and other anon: the rest of the anonymous
  memory (thread stacks, small mmaps);
- text: the binary's executable mapping, rodata: its read-only mappings,
  libs: every shared library.

    benches/memory.py PROCMAN [--n 50,500,5000] [--runs 1]

Processes beyond the open-file limit need `ulimit -n` raised (as root,
this script raises its own soft and hard limits, which the manager
inherits). Knobs: SETTLE_S (6), START_TIMEOUT_S (120), MEMORY_BENCH_DIR
(a fresh temp dir), KEEP=1. Standard library and the adapters in
harness/; Linux. Prints a Markdown table, one row per run, then one line
of JSON with every sample.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SETTLE_S = float(os.environ.get("SETTLE_S", "6"))
START_TIMEOUT_S = float(os.environ.get("START_TIMEOUT_S", "120"))
KEEP = os.environ.get("KEEP") == "1"
SLEEP = shutil.which("sleep") or "/bin/sleep"

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness"))
from adapters.base import Service  # noqa: E402
from adapters.procman import Adapter as ProcmanAdapter  # noqa: E402


def write_config(work, n):
    """The harness's procman adapter writes it: the config the other
    figures were measured with."""
    os.makedirs(f"{work}/logs", exist_ok=True)
    services = [Service(f"p{i}", [SLEEP, "100000"], f"{work}/logs/p{i}.log") for i in range(n)]
    ProcmanAdapter(work).write_config(services)
    return f"{work}/procman.yaml"


def children_of():
    """{ppid: [pid]} and {pid: exe} of every process."""
    kids, exes = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            exes[int(d)] = os.readlink(f"/proc/{d}/exe")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids, exes


def manager_pids(root, binary):
    """The manager and its descendants that run the manager's binary."""
    kids, exes = children_of()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid == root or exes.get(pid) == binary:
            out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def sleep_pids(root):
    """The live `sleep` processes under the manager (or its helpers)."""
    kids, exes = children_of()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if exes.get(pid) == SLEEP:
            out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def running_sleeps(root):
    """How many `sleep` processes run under the manager (or its helpers)."""
    return len(sleep_pids(root))


def stop(mgr, timeout=120):
    """SIGTERM to the manager, SIGKILL if it is not gone after `timeout` s."""
    mgr.send_signal(signal.SIGTERM)
    try:
        mgr.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        mgr.kill()
        mgr.wait()


def smaps(pid, binary):
    """KiB per class of mapping of one process."""
    acc = dict(rss=0, anon=0, file=0, heap=0, other_anon=0, text=0, rodata=0, libs=0, threads=0)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                acc["threads"] = int(line.split()[1])
    name = perms = None
    size = rss = anon = 0

    def flush():
        if name is None:
            return
        acc["rss"] += rss
        acc["anon"] += anon
        acc["file"] += rss - anon
        if name == binary:
            acc["text" if "x" in perms else "rodata"] += rss
        elif name.startswith("/"):
            acc["libs"] += rss
        elif name == "[heap]" or (name == "" and size >= 1024 and "rw" in perms):
            acc["heap"] += rss
        elif anon:
            acc["other_anon"] += rss

    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if not head:
                continue
            if not head[0].endswith(":") or "-" in head[0] and len(head) >= 5:
                flush()
                perms = head[1]
                name = " ".join(head[5:]) if len(head) > 5 else ""
                size = rss = anon = 0
            elif head[0] == "Size:":
                size = int(head[1])
            elif head[0] == "Rss:":
                rss = int(head[1])
            elif head[0] == "Anonymous:":
                anon = int(head[1])
    flush()
    return acc


def measure(procman, n):
    base = os.environ.get("MEMORY_BENCH_DIR")
    made = None if base else tempfile.mkdtemp(prefix="procman-mem-")
    work = os.path.join(base or made, f"n{n}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cfg = write_config(work, n)
    err = open(os.path.join(work, "manager.log"), "wb")
    t0 = time.monotonic()
    mgr = subprocess.Popen([procman, "run", "-c", cfg], stdout=err, stderr=err)
    try:
        end = t0 + START_TIMEOUT_S
        while running_sleeps(mgr.pid) < n:
            if time.monotonic() > end or mgr.poll() is not None:
                raise SystemExit(f"N={n}: {running_sleeps(mgr.pid)} of {n} running (manager log: {work}/manager.log)")
            time.sleep(0.1)
        started = time.monotonic() - t0
        time.sleep(SETTLE_S)
        total = None
        pids = manager_pids(mgr.pid, os.readlink(f"/proc/{mgr.pid}/exe"))
        for pid in pids:
            one = smaps(pid, os.readlink(f"/proc/{mgr.pid}/exe"))
            total = one if total is None else {k: total[k] + one[k] for k in total}
        total["processes"] = len(pids)
        total["start_s"] = round(started, 3)
        return total
    finally:
        stop(mgr)
        err.close()
        if not KEEP:
            # The temporary directory too, not only this N's.
            shutil.rmtree(made or work, ignore_errors=True)


def raise_nofile(n):
    want = 4 * n + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("procman")
    ap.add_argument("--n", default="50,500,5000")
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    procman = os.path.abspath(a.procman)
    ns = [int(x) for x in a.n.split(",")]
    raise_nofile(max(ns))
    mib = lambda k: f"{k / 1024:.1f}"
    print("| N | RSS | anon | file | heap | stacks+other anon | text | rodata | libs | threads | procs | start (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    samples = []
    for n in ns:
        for _ in range(a.runs):
            m = measure(procman, n)
            m["n"] = n
            samples.append(m)
            print(
                f"| {n} | {mib(m['rss'])} | {mib(m['anon'])} | {mib(m['file'])} | {mib(m['heap'])} "
                f"| {mib(m['other_anon'])} | {mib(m['text'])} | {mib(m['rodata'])} | {mib(m['libs'])} "
                f"| {m['threads']} | {m['processes']} | {m['start_s']} |",
                flush=True,
            )
    print("(MiB; heap = [heap] + anonymous mappings >= 1 MiB)")
    print(json.dumps(samples))


if __name__ == "__main__":
    sys.exit(main())
