#!/usr/bin/env python3
"""`procman tui` with many processes: from an event to its row on screen.

A manager runs N (1000) `sleep` processes; `procman tui` runs in a tmux
window of WIDTH x HEIGHT (200 x 60) with its hidden `--trace FILE`, which
writes, for each event it shows, the microseconds from the event's arrival
(read off the stream) to the end of the draw that showed it, and the
CLOCK_MONOTONIC microseconds of that end: the draw includes the terminal's
output, through the pty to tmux.

1. single: ROUNDS (40) restarts, one at a time, of processes in view
   (`POST /processes/pI/restart`, four events each), PAUSE_S (0.3 s)
   apart: median, p95 and max of event-to-screen.
2. burst: BURST (200) restarts asked at once (`?wait=false`), 800 events
   that arrive together: the same figures, and how long the last one
   took from the first request to its draw.
3. idle: CPU of the tui and of the manager over IDLE_S (20 s) with
   nothing happening (the tui reads the list with usage every 2 s, its
   default `--interval`), and the RSS of both.

    benches/tui.py PROCMAN

Scratch under TUI_BENCH_DIR (/tmp/tui-bench), removed unless KEEP=1. Needs
tmux. Standard library only. Prints a Markdown table and a last line of
JSON.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import hot_symbols  # the same directory: its request over the Unix socket

ENV = os.environ.get
N = int(ENV("N", "1000"))
ROUNDS = int(ENV("ROUNDS", "40"))
BURST = int(ENV("BURST", "200"))
PAUSE_S = float(ENV("PAUSE_S", "0.3"))
IDLE_S = float(ENV("IDLE_S", "20"))
WIDTH, HEIGHT = int(ENV("WIDTH", "200")), int(ENV("HEIGHT", "60"))
DIR = ENV("TUI_BENCH_DIR", "/tmp/tui-bench")
TMUX = ["tmux", "-L", "procman-tui-bench"]
TICK = os.sysconf("SC_CLK_TCK")


def ask(sock, method, path):
    """The status code of one request over the manager's Unix socket."""
    return int(hot_symbols.request(sock, path, method).split(" ", 2)[1])


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def screen():
    return subprocess.run(TMUX + ["capture-pane", "-p", "-t", "bench"], capture_output=True, text=True).stdout


def wait_for(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    sys.exit(f"tui bench: timed out waiting for {what}\n{screen()}")


def trace_lines(path):
    try:
        with open(path) as f:
            return [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def figures(us):
    us = sorted(us)
    p95 = us[min(len(us) - 1, int(len(us) * 0.95))]
    return {"events": len(us), "median_ms": statistics.median(us) / 1000, "p95_ms": p95 / 1000, "max_ms": us[-1] / 1000}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    procman = os.path.abspath(sys.argv[1])
    if not shutil.which("tmux"):
        sys.exit("tui bench: tmux is needed")
    shutil.rmtree(DIR, ignore_errors=True)
    os.makedirs(DIR)
    state = os.path.join(DIR, "state")
    cfg = os.path.join(DIR, "procman.yaml")
    sleep = shutil.which("sleep")
    with open(cfg, "w") as f:
        f.write(f"process_manager:\n  port: 0\n  state_dir: \"{state}\"\n  force_shutdown_timeout: \"60s\"\n")
        f.write("log_collection:\n  enabled: false\nmanaged_processes:\n")
        for i in range(N):
            f.write(f"  - id: p{i}\n    management:\n      control:\n        executable: \"{sleep}\"\n"
                    f"        arguments: [\"86400\"]\n        shutdown_timeout: \"5s\"\n")
    manager = subprocess.Popen([procman, "run", "-c", cfg], stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(DIR, "manager.err"), "w"))
    sock = os.path.join(state, "procman.sock")
    trace = os.path.join(DIR, "trace")
    try:
        wait_for("the socket", lambda: os.path.exists(sock))
        subprocess.run(TMUX + ["kill-server"], capture_output=True)
        subprocess.run(TMUX + ["new-session", "-d", "-s", "bench", "-x", str(WIDTH), "-y", str(HEIGHT),
                               f"{procman} tui -c {cfg} --trace {trace}"], check=True)
        wait_for(f"{N} processes up on screen", lambda: f"{N} processes, {N} up" in screen(), timeout=120)
        tui = int(subprocess.run(TMUX + ["display", "-p", "-t", "bench", "#{pane_pid}"],
                                 capture_output=True, text=True).stdout)
        time.sleep(3)
        # 1. one at a time, processes in view
        before = len(trace_lines(trace))
        for r in range(ROUNDS):
            status = ask(sock, "POST", f"/api/v1/processes/p{r % (HEIGHT // 2)}/restart?wait=true")
            assert status == 200, status
            time.sleep(PAUSE_S)
        time.sleep(1)
        single = [us for _, us, _ in trace_lines(trace)[before:]]
        # 2. a burst
        time.sleep(2)
        before = len(trace_lines(trace))
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        for i in range(BURST):
            status = ask(sock, "POST", f"/api/v1/processes/p{i}/restart?wait=false")
            assert status < 300, status
        # Every process of the burst runs again, then the trace settles.
        wait_for("the burst's restarts", lambda: f"{N} processes, {N} up" in screen(), timeout=120)
        last = None
        while last != (count := len(trace_lines(trace))):
            last = count
            time.sleep(1)
        burst_wall = max(at for _, _, at in trace_lines(trace)[before:]) / 1e6 - t0
        burst = [us for _, us, _ in trace_lines(trace)[before:]]
        # 3. idle
        time.sleep(3)
        c_tui, c_mgr, t = cpu_seconds(tui), cpu_seconds(manager.pid), time.monotonic()
        time.sleep(IDLE_S)
        dt = time.monotonic() - t
        idle = {"tui_cpu_percent": 100 * (cpu_seconds(tui) - c_tui) / dt,
                "manager_cpu_percent": 100 * (cpu_seconds(manager.pid) - c_mgr) / dt,
                "tui_rss_mib": rss_mib(tui), "manager_rss_mib": rss_mib(manager.pid)}
        subprocess.run(TMUX + ["send-keys", "-t", "bench", "q"])
    finally:
        subprocess.run(TMUX + ["kill-server"], capture_output=True)
        manager.terminate()
        try:
            manager.wait(120)
        except subprocess.TimeoutExpired:
            manager.kill()
        if ENV("KEEP") != "1":
            shutil.rmtree(DIR, ignore_errors=True)
    s, b = figures(single), figures(burst)
    print(f"`procman tui` with {N} processes, {WIDTH}x{HEIGHT} tmux window\n")
    print("| case | events | median | p95 | max |")
    print("|---|---:|---:|---:|---:|")
    print(f"| one restart at a time ({ROUNDS}) | {s['events']} | {s['median_ms']:.2f} ms | {s['p95_ms']:.2f} ms | {s['max_ms']:.2f} ms |")
    print(f"| {BURST} restarts at once | {b['events']} | {b['median_ms']:.2f} ms | {b['p95_ms']:.2f} ms | {b['max_ms']:.2f} ms |")
    print(f"\nburst: last event drawn {burst_wall:.2f} s after the first request")
    print(f"idle over {IDLE_S:.0f} s: tui {idle['tui_cpu_percent']:.2f} % CPU, {idle['tui_rss_mib']:.1f} MiB; "
          f"manager {idle['manager_cpu_percent']:.2f} % CPU, {idle['manager_rss_mib']:.1f} MiB")
    print(json.dumps({"n": N, "single": s, "burst": b, "burst_wall_s": burst_wall, "idle": idle}))


if __name__ == "__main__":
    main()
