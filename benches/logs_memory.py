#!/usr/bin/env python3
"""The manager's memory while its children flood their output.

For each number of flooding children (1, 2, 8 by default) and each number of
aggregation targets (0 or 2), runs `procman run` with that many copies of
`procman-testchild flood 1G` (restarted as they end, so the flood never
stops; each log rotated at 64 MiB, one old file kept, so the disk use is
bounded), waits SETTLE_S seconds, then samples the manager's VmRSS every
100 ms for WINDOW_S seconds, and reports the median and the peak (VmHWM),
with the rate at which the manager read its children's output (`rchar`).

The two targets are the worst case for memory: a JSON file (every line
expanded) and the manager's stdout on a fifo that nobody reads, so that
target's queue stays full (`STUCK=0`: on /dev/null instead).

    benches/logs_memory.py PROCMAN TESTCHILD [--children 1,2,8] [--targets 0,2]

Standard library only; Linux (/proc). Prints a Markdown table.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import memory  # benches/memory.py, beside this script

SETTLE_S = float(os.environ.get("SETTLE_S", "3"))
# STUCK=0: the stdout target goes to /dev/null instead of a stuck fifo
# (for a manager that would stall on a stuck target).
STUCK = os.environ.get("STUCK", "1") != "0"
WINDOW_S = float(os.environ.get("WINDOW_S", "10"))


def config(work, child, children, targets):
    lines = [
        "process_manager:",
        "  port: 0",
        '  log_level: "warn"',
        '  force_shutdown_timeout: "10s"',
        f'  state_dir: "{work}/state"',
        "managed_processes:",
    ]
    for i in range(children):
        lines += [
            f'  - id: "flood{i}"',
            "    management:",
            "      control:",
            f'        executable: "{child}"',
            '        arguments: ["flood", "1G"]',
            "      restart_policy:",
            "        strategy: always",
            "        restart_delay: 0s",
            "        max_attempts: 0",
            "      logging:",
            "        rotation:",
            "          max_size_mb: 64",
            "          max_files: 1",
        ]
    if targets:
        lines += [
            "log_collection:",
            "  enabled: true",
            "  global_aggregation:",
            "    enabled: true",
            "    targets:",
            "      - type: file",
            f'        path: "{work}/all.jsonl"',
            "        format: json",
            "        rotation:",
            "          max_size_mb: 64",
            "          max_files: 1",
            "      - type: process_manager_stdout",
            "        format: plain",
        ]
    return "\n".join(lines) + "\n"


def kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rchar(pid):
    """Bytes the process has read so far (pipes included)."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def measure(procman, child, children, targets):
    work = tempfile.mkdtemp(prefix="procman-logmem-")
    try:
        cfg = os.path.join(work, "procman.yaml")
        with open(cfg, "w") as f:
            f.write(config(work, child, children, targets))
        fifo = os.path.join(work, "stdout.fifo")
        os.mkfifo(fifo)
        # Read-write: the fifo has a reader (us, never reading), so the
        # manager's writes to it block once it is full.
        held = os.open(fifo if STUCK else os.devnull, os.O_RDWR)
        err = open(os.path.join(work, "stderr"), "wb")
        mgr = subprocess.Popen([procman, "run", "-c", cfg], stdout=held, stderr=err)
        try:
            time.sleep(SETTLE_S)
            samples = []
            read0, t0 = rchar(mgr.pid), time.monotonic()
            end = t0 + WINDOW_S
            while time.monotonic() < end:
                samples.append(kib(mgr.pid, "VmRSS"))
                time.sleep(0.1)
            peak = kib(mgr.pid, "VmHWM")
            rate = (rchar(mgr.pid) - read0) / (time.monotonic() - t0) / 2**20
        finally:
            memory.stop(mgr, timeout=60)
            os.close(held)
            err.close()
        if mgr.returncode not in (0, None) or rate < 1:
            with open(os.path.join(work, "stderr"), errors="replace") as f:
                sys.stderr.write(f.read()[-2000:])
            raise SystemExit(f"the flood did not run (manager exit {mgr.returncode}, {rate:.1f} MiB/s)")
        return statistics.median(samples), peak, rate
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("procman")
    ap.add_argument("testchild")
    ap.add_argument("--children", default="1,2,8")
    ap.add_argument("--targets", default="0,2")
    a = ap.parse_args()
    # The config lives in a temp dir: relative paths would resolve there.
    procman, child = os.path.abspath(a.procman), os.path.abspath(a.testchild)
    print("| flooding children | targets | RSS median (MiB) | RSS peak (MiB) | captured (MiB/s) |")
    print("|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in a.children.split(",")]:
        for t in [int(x) for x in a.targets.split(",")]:
            med, peak, rate = measure(procman, child, n, t)
            print(f"| {n} | {t} | {med / 1024:.1f} | {peak / 1024:.1f} | {rate:.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
