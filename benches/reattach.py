#!/usr/bin/env python3
"""Re-attach: what it costs a new manager to take up N running processes,
beside starting them afresh.

Each round, on a config of N (500) `sleep 100000` processes in a fresh
state directory:

1. fresh: t0 just before `procman run` is launched, then `GET
   /api/v1/processes` on the Unix socket every POLL_S (10 ms) until all N
   are `running`: the time from launch to that answer. Then, polling
   the state records (`<state_dir>/processes/slots`), the time from
   launch until every record names its process's pid ("recorded"): the
   records are written in the background after the spawns, and a manager
   killed before a process's record is written cannot re-attach to it (its tree is stopped
   and it is started afresh).
2. the manager is SIGKILLed (its processes keep running), and a second
   `procman run` on the same config is launched: the time from its launch
   to an answer with all N `running` with the pids of step 1 (a pid that
   changed, or an extra `sleep`, fails the round).
3. the second manager is stopped (SIGTERM), which stops all N.

ROUNDS (5) rounds; medians with min–max, and the ratio of the medians
(re-attach / fresh). Both times include the manager's own start (config,
state directory, server) and the polling; the polling's cost is the same
on both sides.

    benches/reattach.py PROCMAN

Scratch under REATTACH_BENCH_DIR (/tmp/reattach-bench), removed unless
KEEP=1. Standard library only; Linux (/proc). Prints a Markdown table and
a last line of JSON.
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
from api import config, unix_get

ENV = os.environ.get
N = int(ENV("N", "500"))
ROUNDS = int(ENV("ROUNDS", "5"))
POLL_S = float(ENV("POLL_S", "0.01"))
START_TIMEOUT_S = float(ENV("START_TIMEOUT_S", "120"))
WORK = ENV("REATTACH_BENCH_DIR", "/tmp/reattach-bench")
KEEP = ENV("KEEP", "0") == "1"


def log(msg):
    print(f"[reattach.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def processes(sock):
    """The manager's list, or None while its socket does not answer."""
    try:
        return json.loads(unix_get(sock, "/api/v1/processes"))
    except OSError:
        return None


SLOT = 1024  # the size of a record's slot in <state_dir>/processes/slots


def records(state):
    """The pid each process's state record names: the slots file (one JSON
    record per 1024-byte slot; a slot not starting with `{` is empty), and
    `<id>.json` beside it for a record of its own, which wins."""
    found = {}
    where = os.path.join(state, "processes")
    try:
        with open(os.path.join(where, "slots"), "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    for at in range(0, len(data) - SLOT + 1, SLOT):
        slot = data[at:at + SLOT]
        if slot[:1] != b"{":
            continue
        try:
            r = json.loads(slot)
        except ValueError:
            continue
        found[r.get("id")] = r.get("pid")
    try:
        names = os.listdir(where)
    except OSError:
        names = []
    for name in names:
        if name.endswith(".json"):
            try:
                with open(os.path.join(where, name)) as f:
                    r = json.load(f)
                found[r.get("id")] = r.get("pid")
            except (OSError, ValueError):
                pass
    return found


def recorded(state, pids):
    """Whether every process's state record names the pid `pids` gives it."""
    found = records(state)
    return all(found.get(id_) == pid for id_, pid in pids.items())


def sleeps():
    """Pids of the live `sleep 100000` processes (the benchmark's: it
    refuses to start beside any other)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        if state != "Z" and os.path.basename(argv[0]) == b"sleep" and argv[1:2] == [b"100000"]:
            out.append(int(pid))
    return out


class Manager:
    """One `procman run` on the round's config; `up()` times its launch to
    the answer that satisfies `done`."""

    def __init__(self, procman, dir_, cfg, tag):
        self.sock = os.path.join(dir_, "state", "procman.sock")
        self.err = open(os.path.join(dir_, f"manager-{tag}.log"), "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([procman, "run", "-c", cfg], stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err)

    def up(self, done):
        end = self.t0 + START_TIMEOUT_S
        while True:
            ps = processes(self.sock)
            now = time.monotonic()
            if ps is not None and done(ps):
                return now - self.t0, ps
            if self.proc.poll() is not None or now > end:
                raise SystemExit(f"reattach.py: not there after {now - self.t0:.1f} s "
                                 f"(manager exit {self.proc.poll()}); see {self.err.name}")
            time.sleep(POLL_S)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=60)
        self.err.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.err.close()


def all_running(ps):
    return len(ps) == N and all(p["state"] == "running" for p in ps)


def one_round(procman, i):
    dir_ = os.path.join(WORK, f"round{i}")
    shutil.rmtree(dir_, ignore_errors=True)
    os.makedirs(dir_)
    cfg = config(dir_, N, 0)
    first = Manager(procman, dir_, cfg, "fresh")
    second = None
    try:
        fresh_s, ps = first.up(all_running)
        pids = {p["id"]: p["pid"] for p in ps}
        while not recorded(os.path.join(dir_, "state"), pids):
            if time.monotonic() - first.t0 > START_TIMEOUT_S:
                raise SystemExit(f"reattach.py: state records missing after {START_TIMEOUT_S} s")
            time.sleep(POLL_S)
        recorded_s = time.monotonic() - first.t0
        first.kill()
        alive = sleeps()
        if sorted(alive) != sorted(pids.values()):
            raise SystemExit(f"reattach.py: {len(alive)} sleeps alive after the SIGKILL, not the {N} started")
        second = Manager(procman, dir_, cfg, "reattach")
        reattach_s, _ = second.up(lambda ps: all_running(ps) and all(pids[p["id"]] == p["pid"] for p in ps))
        extra = set(sleeps()) - set(pids.values())
        if extra:
            raise SystemExit(f"reattach.py: {len(extra)} sleeps beside the re-attached ones")
        return {"fresh_s": fresh_s, "recorded_s": recorded_s, "reattach_s": reattach_s}
    finally:
        if first.proc.poll() is None:
            first.kill()
        if second is not None:
            second.stop()
        for pid in sleeps():   # only if a failed round left them
            os.kill(pid, signal.SIGKILL)
        if not KEEP:
            shutil.rmtree(dir_, ignore_errors=True)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    procman = os.path.abspath(sys.argv[1])
    if sleeps():
        raise SystemExit("reattach.py: `sleep 100000` processes run already; they would be counted")
    os.makedirs(WORK, exist_ok=True)
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "n": N, "nproc": os.cpu_count(),
           "loadavg_start": os.getloadavg(), "rounds": []}
    try:
        for i in range(ROUNDS):
            r = one_round(procman, i)
            log(f"round {i + 1} of {ROUNDS}: fresh {r['fresh_s'] * 1e3:.0f} ms, recorded "
                f"{r['recorded_s'] * 1e3:.0f} ms, re-attach {r['reattach_s'] * 1e3:.0f} ms")
            res["rounds"].append(r)
    finally:
        if not KEEP:
            shutil.rmtree(WORK, ignore_errors=True)
    res["loadavg_end"] = os.getloadavg()
    rows = res["rounds"]
    med = {k: statistics.median(r[k] for r in rows) for k in ("fresh_s", "recorded_s", "reattach_s")}
    print(f"\n{N} processes, launch of `procman run` → all {N} `running` in the API, "
          f"{ROUNDS} rounds, {res['nproc']} CPUs, load average {res['loadavg_start'][0]:.2f} at start\n")
    print("| | median ms | min–max ms |")
    print("|---|---:|---:|")
    for key, name in (("fresh_s", "fresh start"), ("recorded_s", "fresh start, every state record written"),
                      ("reattach_s", "re-attach after SIGKILL")):
        xs = [r[key] * 1e3 for r in rows]
        print(f"| {name} | {med[key] * 1e3:.0f} | {min(xs):.0f}–{max(xs):.0f} |")
    res["ratio"] = med["reattach_s"] / med["fresh_s"]
    print(f"\nre-attach / fresh (medians): {res['ratio']:.2f}\n")
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
