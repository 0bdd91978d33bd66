#!/usr/bin/env python3
"""Resource limits: what they cost the manager.

N (500) `sleep` processes, the manager's CPU measured from
/proc/PID/stat (utime + stime of every thread) over IDLE_S (30 s) after
SETTLE_S (5 s), in four set-ups, each run RUNS (3) times:

1. none: no limits (the baseline).
2. kernel: every process with max_memory_mb, max_cpu_percent,
   max_processes and max_file_descriptors, the manager as root: the kernel
   enforces them (cgroup v2 or v1, whichever the host has); the manager
   watches OOM kills through one event descriptor per process and should
   not wake at all.
3. monitor: the same config, the manager as `nobody` (no cgroups can be
   created): every limit is watched by sampling every sample_interval
   (default 5 s): the CPU this costs, per process and sample.
4. scrape: in set-up 2, SCRAPES (20) `GET /metrics` over the Unix socket,
   one after the other: wall time per scrape and the manager's CPU per
   scrape, per process (each scrape reads every process's usage).

Also the manager's VmRSS and open descriptors in each set-up.

    benches/limits.py PROCMAN

Needs root (set-up 3 switches to `nobody` with setpriv). Scratch under
LIMITS_BENCH_DIR (/tmp/limits-bench), removed unless KEEP=1. Standard
library only. Prints Markdown tables and a last line of JSON.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

# Shared with the control-plane benchmark beside this file.
from api import children as sleeps_under, cpu_ticks, status_kib, unix_get as get

ENV = os.environ.get
N = int(ENV("N", "500"))
IDLE_S = float(ENV("IDLE_S", "30"))
SETTLE_S = float(ENV("SETTLE_S", "5"))
RUNS = int(ENV("RUNS", "3"))
SCRAPES = int(ENV("SCRAPES", "20"))
WORK = ENV("LIMITS_BENCH_DIR", "/tmp/limits-bench")
KEEP = ENV("KEEP", "0") == "1"
TICK = os.sysconf("SC_CLK_TCK")
SLEEP = shutil.which("sleep") or "/bin/sleep"
NOBODY = 65534
LIMITS = [
    "      resource_limits:",
    "        max_memory_mb: 64",
    "        max_cpu_percent: 50",
    "        max_processes: 16",
    "        max_file_descriptors: 1024",
]


def log(msg):
    print(f"[limits.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def config(dir_, limits):
    lines = [
        "process_manager:",
        "  port: 0",
        '  log_level: "warn"',
        f'  state_dir: "{dir_}/state"',
        "managed_processes:",
    ]
    for i in range(N):
        lines += [
            f'  - id: "p{i}"',
            "    management:",
            "      control:",
            f'        executable: "{SLEEP}"',
            '        arguments: ["100000"]',
        ]
        if limits:
            lines += LIMITS
    path = os.path.join(dir_, "procman.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class Manager:
    def __init__(self, procman, tag, limits, as_nobody=False):
        self.dir = os.path.join(WORK, tag)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        cfg = config(self.dir, limits)
        argv = [procman, "run", "-c", cfg]
        if as_nobody:
            os.chown(self.dir, NOBODY, NOBODY)
            os.chown(cfg, NOBODY, NOBODY)
            argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + argv
        self.err = open(os.path.join(self.dir, "manager.log"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        self.pid = self.proc.pid  # setpriv execs the manager: same pid
        self.sock = os.path.join(self.dir, "state", "procman.sock")
        t0 = time.monotonic()
        while len(sleeps_under(self.pid)) < N:
            if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                self.stop()
                raise SystemExit(f"limits.py: the manager did not start {N} processes; see {self.err.name}")
            time.sleep(0.05)
        self.start_s = time.monotonic() - t0

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.err.close()
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


def idle(m):
    time.sleep(SETTLE_S)
    t0, c0 = time.monotonic(), cpu_ticks(m.pid)
    time.sleep(IDLE_S)
    c1, t1 = cpu_ticks(m.pid), time.monotonic()
    return {"ticks": c1 - c0, "cpu_pct": (c1 - c0) / TICK / (t1 - t0) * 100,
            "rss_mib": status_kib(m.pid, "VmRSS") / 1024, "fds": m.fds(), "start_s": m.start_s}


def scrape(m):
    body = get(m.sock, "/metrics")  # warm-up
    series = body.count(b"procman_process_memory_bytes{")
    walls, c0 = [], cpu_ticks(m.pid)
    for _ in range(SCRAPES):
        t0 = time.perf_counter()
        get(m.sock, "/metrics")
        walls.append((time.perf_counter() - t0) * 1e3)
    c1 = cpu_ticks(m.pid)
    cpu_ms = (c1 - c0) / TICK * 1e3 / SCRAPES
    return {"wall_ms": statistics.median(walls), "cpu_ms": cpu_ms,
            "cpu_us_per_process": cpu_ms * 1e3 / N, "memory_series": series}


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    if os.geteuid() != 0:
        raise SystemExit("limits.py: run as root (set-up 3 switches to nobody)")
    procman = os.path.abspath(sys.argv[1])
    os.makedirs(WORK, exist_ok=True)
    os.chmod(WORK, 0o755)
    res = {"n": N, "idle_s": IDLE_S}
    for name, limits, nobody in [("none", False, False), ("kernel", True, False),
                                 ("monitor", True, True)]:
        rows, scrapes = [], []
        for i in range(RUNS):
            log(f"{name}: run {i + 1} of {RUNS}")
            m = Manager(procman, f"{name}{i}", limits, nobody)
            try:
                rows.append(idle(m))
                if name == "kernel":
                    scrapes.append(scrape(m))
            finally:
                m.stop()
        res[name] = rows
        if scrapes:
            res["scrape"] = scrapes
    print(f"\n{N} processes, manager CPU over {IDLE_S:.0f} s after {SETTLE_S:.0f} s, "
          f"medians of {RUNS} runs [min–max ticks]\n")
    print("| set-up | CPU ticks | CPU % | RSS MiB | descriptors | start s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ["none", "kernel", "monitor"]:
        rows = res[name]
        ticks = [r["ticks"] for r in rows]
        print(f"| {name} | {med(rows, 'ticks'):.0f} [{min(ticks)}–{max(ticks)}] | "
              f"{med(rows, 'cpu_pct'):.3f} | {med(rows, 'rss_mib'):.1f} | "
              f"{med(rows, 'fds'):.0f} | {med(rows, 'start_s'):.2f} |")
    mon = res["monitor"]
    samples = IDLE_S / 5.0 * N
    per = med(mon, "ticks") / TICK / samples * 1e6
    print(f"\nmonitor: {per:.1f} µs of manager CPU per process per sample "
          f"(sample_interval 5 s, {samples:.0f} samples in the window)")
    sc = res["scrape"]
    print(f"\n/metrics with {N} processes, {SCRAPES} scrapes per run: wall "
          f"{med(sc, 'wall_ms'):.1f} ms, manager CPU {med(sc, 'cpu_ms'):.1f} ms per scrape, "
          f"{med(sc, 'cpu_us_per_process'):.1f} µs per process; "
          f"memory series per scrape: {sc[0]['memory_series']}")
    print(json.dumps(res))
    if not KEEP:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
