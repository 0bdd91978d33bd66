#!/usr/bin/env python3
"""The control plane: what the API and the client commands cost.

Four measurements, each against its goal (docs/performance.md, "Control
plane"):

1. status: `procman status -o json` with N_STATUS (1000) `sleep` processes
   running, the whole command timed as a user runs it (process start, config
   or state directory, request, JSON out), STATUS_RUNS (50) times: median and
   p95. Beside it, to take it apart: `procman --version` (the bare process
   start), `procman validate -c FILE` (parsing the config), `status
   --state-dir DIR` (no config to parse), and `GET /api/v1/processes` over
   the Unix socket from Python (a new connection per request, as the CLI
   makes). Then the manager's idle CPU over IDLE_S (30 s) with those
   processes up: once before any request, once after the requests.
2. rps: the manager pinned to CPU 1 (`taskset -c 1`), this script's client
   pinned to CPU 0; RPS_CONNS (8) keep-alive HTTP/1.1 connections over TCP
   with the bearer token, RPS_S (10 s) per run after a 1 s warm-up, RPS_RUNS
   (3) runs per route and depth: `GET /healthz` and `GET
   /api/v1/processes/ID`, with one request in flight per connection (as
   `wrk -t1 -c8`) and with RPS_DEPTH (16) pipelined, since one Python
   thread cannot keep a Rust server busy one request at a time. The
   manager's CPU over the window is reported too: below ~95 % of its core
   the client, not the server, was the limit; CPU µs per request is the
   server's own cost.
3. rss: the manager's VmRSS with the server idle (no request made) after its
   N processes run and SETTLE_S (3 s) passed, for N in RSS_N (10,500) and
   RSS_RUNS (3) runs each: TCP on (a port), TCP off (`port: 0`, the socket
   stays), and, given `--old PROCMAN`, a build without a server (the commit
   before the API) with the same config as `port: 0`.

    benches/api.py PROCMAN [--old OLD_PROCMAN] [--only status,rps,rss]

Ports come from API_PORT (52055) up; scratch under API_BENCH_DIR
(/tmp/api-bench), removed at the end unless KEEP=1. Standard library only;
Linux (/proc, taskset). Prints Markdown tables and a last line of JSON.
"""
import argparse
import json
import math
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ENV = os.environ.get
N_STATUS = int(ENV("N_STATUS", "1000"))
STATUS_RUNS = int(ENV("STATUS_RUNS", "50"))
IDLE_S = float(ENV("IDLE_S", "30"))
RPS_S = float(ENV("RPS_S", "10"))
RPS_RUNS = int(ENV("RPS_RUNS", "3"))
RPS_CONNS = int(ENV("RPS_CONNS", "8"))
RPS_DEPTH = int(ENV("RPS_DEPTH", "16"))
RSS_N = [int(x) for x in ENV("RSS_N", "10,500").split(",")]
RSS_RUNS = int(ENV("RSS_RUNS", "3"))
SETTLE_S = float(ENV("SETTLE_S", "3"))
START_TIMEOUT_S = float(ENV("START_TIMEOUT_S", "120"))
PORT = int(ENV("API_PORT", "52055"))
WORK = ENV("API_BENCH_DIR", "/tmp/api-bench")
KEEP = ENV("KEEP", "0") == "1"
TICK = os.sysconf("SC_CLK_TCK")
SLEEP = shutil.which("sleep") or "/bin/sleep"


def log(msg):
    print(f"[api.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the manager

def config(dir_, n, port):
    lines = [
        "process_manager:",
        f"  port: {port}",
        '  log_level: "warn"',
        '  force_shutdown_timeout: "30s"',
        f'  state_dir: "{dir_}/state"',
        "managed_processes:",
    ]
    for i in range(n):
        lines += [
            f'  - id: "p{i}"',
            "    management:",
            "      control:",
            f'        executable: "{SLEEP}"',
            '        arguments: ["100000"]',
        ]
    path = os.path.join(dir_, "procman.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    global PORT
    while not port_free(PORT):
        PORT += 1
        if PORT > 52999:
            raise SystemExit("api.py: no free port in 52055-52999")
    return PORT


def children(pid):
    """Pids of the manager's children that run `sleep` (exec'd)."""
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    ran = []
    for c in out:
        try:
            with open(f"/proc/{c}/comm") as f:
                if f.read().strip() == "sleep":
                    ran.append(c)
        except OSError:
            pass
    return ran


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime, every thread


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Manager:
    """`procman run` on a config of n sleeps, waited for until every child has
    exec'd `sleep` (read from /proc, so no request reaches the server)."""

    def __init__(self, procman, tag, n, port, cpu=None):
        self.dir = os.path.join(WORK, tag)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.n, self.port = n, port
        self.cfg = config(self.dir, n, port)
        self.state = os.path.join(self.dir, "state")
        self.sock = os.path.join(self.state, "procman.sock")
        argv = [procman, "run", "-c", self.cfg]
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        self.err = open(os.path.join(self.dir, "manager.log"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        self.pid = self.proc.pid   # taskset execs the manager: same pid
        self.kids = []
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.stop()
                raise SystemExit(f"api.py: the manager exited ({self.proc.returncode}); see {self.err.name}")
            self.kids = children(self.pid)
            if len(self.kids) >= n:
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise SystemExit(f"api.py: {len(self.kids)} of {n} processes up after {START_TIMEOUT_S} s")

    def token(self):
        with open(os.path.join(self.state, "api-token")) as f:
            return f.read().strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                log(f"manager {self.pid} still up 60 s after SIGTERM: SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=10)
        for c in self.kids:   # only if the manager left them behind
            try:
                os.kill(c, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.err.close()
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- measuring

def pct(xs, p):
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def timed(argv, runs, check=None):
    """Wall-clock ms of `argv`, run `runs` times after one warm-up run."""
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if out.returncode != 0:
        raise SystemExit(f"api.py: {' '.join(argv)} exited {out.returncode}: {out.stderr.decode()[-500:]}")
    if check:
        check(out.stdout)
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        ms.append((time.perf_counter() - t0) * 1e3)
        if r.returncode != 0:
            raise SystemExit(f"api.py: {' '.join(argv)} exited {r.returncode}")
    return ms


def unix_get(sock, path):
    """One GET on a new connection over the Unix socket; the body."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    try:
        s.connect(sock)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: procman\r\nConnection: close\r\n\r\n".encode())
        buf = bytearray()
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            buf += b
    finally:
        s.close()
    head, _, body = bytes(buf).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"api.py: GET {path}: {head[:80]!r}")
    return body


def row(name, ms, goal=""):
    return f"| {name} | {statistics.median(ms):.1f} | {pct(ms, 95):.1f} | {min(ms):.1f}–{max(ms):.1f} | {goal} |"


def idle_cpu(m, seconds):
    t0, c0 = time.monotonic(), cpu_ticks(m.pid)
    time.sleep(seconds)
    c1, t1 = cpu_ticks(m.pid), time.monotonic()
    return c1 - c0, (c1 - c0) / TICK / (t1 - t0) * 100


def bench_status(procman, res):
    n = N_STATUS
    m = Manager(procman, "status", n, free_port())
    try:
        log(f"status: {n} processes up (manager {m.pid}); settle, then {IDLE_S:.0f} s idle window")
        time.sleep(5)
        ticks0, cpu0 = idle_cpu(m, IDLE_S)
        rss0 = status_kib(m.pid, "VmRSS")

        def check(out):
            got = len(json.loads(out))
            if got != n:
                raise SystemExit(f"api.py: status listed {got} processes, not {n}")

        log(f"status: {STATUS_RUNS} runs of each command")
        cmds = [
            ("`procman --version` (process start only)", [procman, "--version"], None),
            (f"`procman validate -c FILE` ({n} processes)", [procman, "validate", "-c", m.cfg], None),
            ("`procman status -c FILE -o json`", [procman, "status", "-c", m.cfg, "-o", "json"], check),
            ("`procman status --state-dir DIR -o json`",
             [procman, "status", "--state-dir", m.state, "-o", "json"], check),
        ]
        times = {name: timed(argv, STATUS_RUNS, chk) for name, argv, chk in cmds}
        body = unix_get(m.sock, "/api/v1/processes")
        if len(json.loads(body)) != n:
            raise SystemExit("api.py: GET /api/v1/processes: wrong length")
        rest = []
        for _ in range(STATUS_RUNS):
            t0 = time.perf_counter()
            unix_get(m.sock, "/api/v1/processes")
            rest.append((time.perf_counter() - t0) * 1e3)
        times["`GET /api/v1/processes`, Unix socket, new connection (Python)"] = rest
        time.sleep(2)
        log(f"status: {IDLE_S:.0f} s idle window after the requests")
        ticks1, cpu1 = idle_cpu(m, IDLE_S)
        rss = status_kib(m.pid, "VmRSS")
    finally:
        m.stop()
    print(f"\n### status, {n} processes running ({STATUS_RUNS} runs each, wall clock in ms)\n")
    print("| command | median | p95 | min–max | goal |")
    print("|---|---:|---:|---:|---|")
    for name, ms in times.items():
        goal = "≤ 50 ms" if name.startswith("`procman status -c") else ""
        print(row(name, ms, goal))
    print(f"\nThe list is {len(body) / 1024:.0f} KiB of JSON. Manager RSS before the requests: "
          f"{rss0 / 1024:.1f} MiB, after: {rss / 1024:.1f} MiB.\n")
    print(f"| idle window ({IDLE_S:.0f} s, {n} processes) | ticks | CPU | goal |")
    print("|---|---:|---:|---|")
    print(f"| before any request | {ticks0} | {cpu0:.2f} % | 0 % |")
    print(f"| after {5 * STATUS_RUNS + 5} requests | {ticks1} | {cpu1:.2f} % | 0 % |")
    res["status"] = {k: {"median_ms": statistics.median(v), "p95_ms": pct(v, 95), "min_ms": min(v),
                         "max_ms": max(v)} for k, v in times.items()}
    res["status"]["list_bytes"] = len(body)
    res["status"]["rss_kib"] = [rss0, rss]
    res["idle"] = {"n": n, "window_s": IDLE_S, "ticks_before": ticks0, "ticks_after": ticks1}


# ---------------------------------------------------------------- rps

def hammer(pid, port, path, token, conns, depth, seconds, warmup=1.0):
    """Requests per second of `conns` keep-alive connections with `depth`
    requests in flight each (1: as `wrk -t1 -c<conns>`; more: HTTP/1.1
    pipelining, so that this Python client is not the limit), from one
    thread; and the CPU share of the manager `pid` over the counted window."""
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
           f"Authorization: Bearer {token}\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, bytearray())
        s.send(req * depth)
    done = bad = 0
    t_count = time.monotonic() + warmup
    end = t_count + seconds
    counted = False
    try:
        while True:
            now = time.monotonic()
            if now >= end:
                c1, t1 = cpu_ticks(pid), now
                break
            if not counted and now >= t_count:
                counted, base, c0, t0 = True, done, cpu_ticks(pid), now
            events = sel.select(min(1.0, end - now))
            if not events and time.monotonic() < end:
                raise SystemExit(f"api.py: no answer for 1 s on {path}")
            for key, _ in events:
                s, buf = key.fileobj, key.data
                b = s.recv(1 << 18)
                if not b:
                    raise SystemExit(f"api.py: the server closed a connection ({path})")
                buf += b
                got = pos = 0
                while True:   # every whole answer in the buffer
                    h = buf.find(b"\r\n\r\n", pos)
                    if h < 0:
                        break
                    i = buf.find(b"content-length:", pos, h)
                    if i < 0:
                        raise SystemExit(f"api.py: an answer without content-length: {bytes(buf[pos:h])!r}")
                    length = int(buf[i + 15:buf.find(b"\r\n", i)])
                    if len(buf) < h + 4 + length:
                        break
                    if buf[pos + 9:pos + 12] != b"200":
                        bad += 1
                    pos = h + 4 + length
                    got += 1
                if got:
                    del buf[:pos]
                    done += got
                    s.send(req * got)
    finally:
        for s in socks:
            s.close()
    if not counted:
        raise SystemExit("api.py: the window never started")
    if bad:
        raise SystemExit(f"api.py: {bad} answers were not 200 ({path})")
    return (done - base) / (t1 - t0), (c1 - c0) / TICK / (t1 - t0)


def bench_rps(procman, res):
    n = N_STATUS
    m = Manager(procman, "rps", n, free_port(), cpu=1)
    os.sched_setaffinity(0, {0})
    try:
        token = m.token()
        mid = f"p{n // 2}"
        detail = json.loads(unix_get(m.sock, f"/api/v1/processes/{mid}"))
        if detail["process"]["id"] != mid:
            raise SystemExit("api.py: GET /api/v1/processes/ID: wrong process")
        log(f"rps: manager {m.pid} on CPU 1 ({n} processes), client on CPU 0, {RPS_CONNS} connections")
        out = {}
        for path in ("/healthz", f"/api/v1/processes/{mid}"):
            for depth in (1, RPS_DEPTH):
                runs = []
                for _ in range(RPS_RUNS):
                    rps, cpu = hammer(m.pid, m.port, path, token, RPS_CONNS, depth, RPS_S)
                    runs.append((rps, cpu * 100, cpu / rps * 1e6))
                    log(f"rps: {path} depth {depth}: {rps:.0f}/s, manager CPU {runs[-1][1]:.0f} %")
                    time.sleep(1)
                out[(path, depth)] = runs
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        m.stop()
    print(f"\n### requests per second, manager on one core ({n} processes; {RPS_CONNS} keep-alive "
          f"connections over TCP with the token, {RPS_S:.0f} s per run, {RPS_RUNS} runs)\n")
    print("| route | in flight per connection | req/s median (min–max) | manager CPU (of one core) "
          "| manager CPU µs per request |")
    print("|---|---:|---:|---:|---:|")
    res["rps"] = []
    for (path, depth), runs in out.items():
        rps = [r[0] for r in runs]
        name = "/api/v1/processes/ID" if path != "/healthz" else path
        print(f"| `GET {name}` | {depth}{' (pipelined)' if depth > 1 else ''} | "
              f"{statistics.median(rps):.0f} ({min(rps):.0f}–{max(rps):.0f}) | "
              f"{statistics.median(r[1] for r in runs):.0f} % | {statistics.median(r[2] for r in runs):.1f} |")
        res["rps"].append({"route": name, "depth": depth, "rps": rps, "cpu_pct": [r[1] for r in runs],
                           "us_per_req": [r[2] for r in runs]})


# ---------------------------------------------------------------- rss

def bench_rss(procman, old, res):
    variants = [("TCP on", procman, True), ("TCP off (`port: 0`)", procman, False)]
    if old:
        variants.append(("no server (old build)", old, False))
    table = {}
    for n in RSS_N:
        for name, binary, tcp in variants:
            kib = []
            for r in range(RSS_RUNS):
                m = Manager(binary, f"rss-{n}", n, free_port() if tcp else 0)
                try:
                    time.sleep(SETTLE_S)
                    kib.append(tuple(status_kib(m.pid, f) for f in ("VmRSS", "RssAnon", "RssFile")))
                finally:
                    m.stop()
            table[(n, name)] = kib
            log(f"rss: N={n} {name}: {[round(k[0] / 1024, 1) for k in kib]} MiB")
    print(f"\n### manager RSS, server idle ({RSS_RUNS} runs, MiB, VmRSS {SETTLE_S:.0f} s after every process ran)\n")
    last = "no server" if old else "TCP off"
    print("| processes | " + " | ".join(v[0] for v in variants) + f" | TCP on − {last} |")
    print("|---:|" + "---:|" * (len(variants) + 1))
    res["rss_kib"] = {}
    med = {}
    for n in RSS_N:
        for v in variants:
            runs = table[(n, v[0])]
            med[(n, v[0])] = [statistics.median(r[k] for r in runs) for k in range(3)]
        cells = [f"{med[(n, v[0])][0] / 1024:.2f} ({min(r[0] for r in table[(n, v[0])]) / 1024:.2f}–"
                 f"{max(r[0] for r in table[(n, v[0])]) / 1024:.2f})" for v in variants]
        diff = f"{(med[(n, variants[0][0])][0] - med[(n, variants[-1][0])][0]) / 1024:+.2f}"
        print(f"| {n} | " + " | ".join(cells) + f" | {diff} |")
        res["rss_kib"][n] = {v[0]: table[(n, v[0])] for v in variants}
    print("\nThe same medians split into anonymous memory (heap, stacks) and file pages (mostly the "
          "binary's code), MiB:\n")
    print("| processes | " + " | ".join(f"{v[0]}: anon / file" for v in variants) + " |")
    print("|---:|" + "---:|" * len(variants))
    for n in RSS_N:
        print(f"| {n} | " + " | ".join(f"{med[(n, v[0])][1] / 1024:.2f} / {med[(n, v[0])][2] / 1024:.2f}"
                                       for v in variants) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("procman")
    ap.add_argument("--old", help="a procman built without the server, for the RSS baseline")
    ap.add_argument("--only", default="status,rps,rss")
    a = ap.parse_args()
    procman = os.path.abspath(a.procman)
    old = os.path.abspath(a.old) if a.old else None
    only = a.only.split(",")
    os.makedirs(WORK, exist_ok=True)
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg_start": os.getloadavg(),
           "nproc": os.cpu_count(), "kernel": os.uname().release}
    print(f"{res['date']}, {res['nproc']} CPUs, kernel {res['kernel']}, "
          f"load average {res['loadavg_start'][0]:.2f} at start")
    try:
        if "status" in only:
            bench_status(procman, res)
        if "rps" in only:
            bench_rps(procman, res)
        if "rss" in only:
            bench_rss(procman, old, res)
    finally:
        if not KEEP:
            shutil.rmtree(WORK, ignore_errors=True)
    res["loadavg_end"] = os.getloadavg()
    print(f"\nload average: {res['loadavg_start'][0]:.2f} at start, {res['loadavg_end'][0]:.2f} at end\n")
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
