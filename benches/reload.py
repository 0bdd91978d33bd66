#!/usr/bin/env python3
"""Hot reload: what `procman reload` costs with N running processes.

On a config of N (500) `sleep 100000` processes, each round measures the
wall time of one `procman reload --state-dir DIR` command (the CLI's own
start included), from its launch to its exit, for:

1. dry run: the plan only;
2. no change: the file is the same;
3. one changed: one process's arguments change (it is stopped and
   started again; the other N-1 are left alone);
4. ten added: ten processes are appended; the time until all ten run is
   taken from the same launch (the command returns once they are
   spawned).

After each reload the PIDs of the untouched processes are checked to be
the same (a difference fails the round). ROUNDS (5) rounds; medians with
min–max.

    benches/reload.py PROCMAN

Scratch under RELOAD_BENCH_DIR (/tmp/reload-bench), removed unless KEEP=1.
Standard library only. Prints a Markdown table and a last line of JSON.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

N = int(os.environ.get("N", "500"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
ROOT = os.environ.get("RELOAD_BENCH_DIR", "/tmp/reload-bench")


def entry(i, arg="100000"):
    return (f"  - id: p{i}\n    type: standard_managed\n    management:\n"
            f"      control:\n        executable: sleep\n        arguments: [\"{arg}\"]\n")


def config(state, entries):
    return (f"process_manager:\n  port: 0\n  state_dir: {state}\n"
            f"managed_processes:\n" + "".join(entries))


def cli(procman, *args):
    t0 = time.monotonic()
    out = subprocess.run([procman, *args], capture_output=True, text=True, timeout=300)
    took = time.monotonic() - t0
    if out.returncode != 0:
        sys.exit(f"{args}: exit {out.returncode}: {out.stderr}")
    return took, out.stdout


def pids(procman, state):
    out = subprocess.run([procman, "status", "--state-dir", state, "-o", "json"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode == 3:  # the manager is not answering yet
        return {}
    if out.returncode != 0:
        sys.exit(f"status: exit {out.returncode}: {out.stderr}")
    return {p["id"]: (p["pid"], p["state"]) for p in json.loads(out.stdout)}


def wait_running(procman, state, ids, deadline=120):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        seen = pids(procman, state)
        if seen and all(seen.get(i, (None, ""))[1] == "running" for i in ids):
            return seen
        time.sleep(0.01)
    sys.exit(f"not all running: {ids}")


def one_round(procman, n, r):
    d = os.path.join(ROOT, f"r{r}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    state, file = os.path.join(d, "state"), os.path.join(d, "procman.yaml")
    entries = [entry(i) for i in range(n)]
    with open(file, "w") as f:
        f.write(config(state, entries))
    log = open(os.path.join(d, "manager.log"), "w")
    mgr = subprocess.Popen([procman, "run", "-c", file], stdout=log, stderr=log)
    try:
        before = wait_running(procman, state, [f"p{i}" for i in range(n)])
        got = {}
        got["dry run"], _ = cli(procman, "reload", "--dry-run", "--state-dir", state)
        got["no change"], _ = cli(procman, "reload", "--state-dir", state)
        entries[0] = entry(0, "100001")
        with open(file, "w") as f:
            f.write(config(state, entries))
        got["one changed"], _ = cli(procman, "reload", "--state-dir", state)
        after = pids(procman, state)
        same = all(after[f"p{i}"][0] == before[f"p{i}"][0] for i in range(1, n))
        if not same or after["p0"][0] == before["p0"][0]:
            sys.exit("the untouched processes must keep their pids, p0 must change")
        added = [f"p{i}" for i in range(n, n + 10)]
        with open(file, "w") as f:
            f.write(config(state, entries + [entry(i) for i in range(n, n + 10)]))
        t0 = time.monotonic()
        got["ten added (command)"], _ = cli(procman, "reload", "--state-dir", state)
        wait_running(procman, state, added)
        got["ten added (all running)"] = time.monotonic() - t0
        return got
    finally:
        mgr.terminate()
        mgr.wait(timeout=120)
        log.close()


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if sys.argv[1:] in (["-h"], ["--help"]) else 2)
    procman = os.path.abspath(sys.argv[1])
    rounds = [one_round(procman, N, r) for r in range(ROUNDS)]
    print(f"| reload, {N} processes running | median | min–max |\n|---|---:|---:|")
    summary = {}
    for key in rounds[0]:
        vals = [r[key] * 1000 for r in rounds]
        med = statistics.median(vals)
        summary[key] = round(med, 1)
        print(f"| {key} | {med:.1f} ms | {min(vals):.1f}–{max(vals):.1f} ms |")
    print(json.dumps({"n": N, "rounds": ROUNDS, "median_ms": summary}))
    if os.environ.get("KEEP") != "1":
        shutil.rmtree(ROOT, ignore_errors=True)


if __name__ == "__main__":
    main()
