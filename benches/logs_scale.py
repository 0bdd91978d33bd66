#!/usr/bin/env python3
"""Log capture at scale: PROCS processes each write RATE bytes per second of
numbered 100-byte lines for SECONDS, all at once; then every process's log
file must hold every line it wrote, in order: none lost, none duplicated,
none torn (a line cut into a piece and its continuation). Reported: the
manager's CPU seconds per MiB over the window (utime + stime of every
process of the manager, from /proc), the total MiB/s from the start signal
until the last byte is in its file, and how late the writers finished
(a writer held back by a full pipe falls behind its schedule).

    benches/logs_scale.py [--managers plain,procman,procman_ts] [--procs 500]
                          [--seconds 20] [--rate 1048576] [--out FILE]

`plain` (each child's stdout is its log file: no pipe, no manager CPU) is
the reference; `procman` captures raw bytes, `procman_ts` writes a timestamp
and the stream before every line (`logging.format: plain`). The children are
the harness's `benchchild lines` (benches/harness/child.c): line k of child i
is `L<i, 6 digits> <k, 10 digits> ` padded with 'x' to 99 bytes and a newline.

Knobs (environment, the options win): PROCS, DURATION_S, RATE, RUNS (1), CATCHUP_TIMEOUT_S
(120: how long after the window the logs may take to catch up), and the
harness's START_TIMEOUT_S, STOP_TIMEOUT_S, BENCH_WORK, BENCH_KEEP=1, PROCMAN,
CC. Results are appended to --out (default $BENCH_RESULTS/logs-scale.jsonl,
or target/bench-results/logs-scale.jsonl). Standard library only; as root,
raise RLIMIT_NOFILE first for large PROCS (`raise_limits` in benches/harness/setup.sh).
"""
import argparse
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "harness"))
import bench  # noqa: E402
from adapters.base import Service, Unavailable  # noqa: E402
from procfs import cpu_delta_s, cpu_ticks, wait_gone  # noqa: E402

ENV = os.environ.get
LINE = 100
TS = 27   # bytes of a timestamp in a `plain` file
PAD = b"x" * (LINE - 20)
# In a file of format `plain`: a run's separator or end record, and the
# prefix of a line (27-byte timestamp, stream, `+` for a continuation).
SEPARATOR = re.compile(rb"^.{27} ----- run [^\n]*\n", re.M)
CONTINUATION = re.compile(rb"\n.{27} stdout\+ ")
PREFIX = re.compile(rb"^.{27} stdout ", re.M)
PAYLOAD = re.compile(rb"L(\d{6}) (\d{10}) x{80}")


_BASE = {}


def expected(ident, nlines):
    """Lines 0..nlines-1 of child `ident`: built once for child 0, then its
    number replaced (one pass in C instead of a Python loop per line)."""
    base = _BASE.get(nlines)
    if base is None:
        base = _BASE[nlines] = b"".join([b"L000000 %010d %s\n" % (k, PAD) for k in range(nlines)])
    return base if ident == 0 else base.replace(b"L000000 ", b"L%06d " % ident)


def payload(data, fmt):
    """The child's bytes from a log file's, and the number of continuation
    records (each one a torn line)."""
    if fmt == "raw":
        return data, 0
    # The usual file: a start separator, whole-line records of the same
    # length, an end record. Cut by slicing, checking what is cut away.
    sep = b" ----- run "
    while data[TS:TS + len(sep)] == sep:
        data = data[data.index(b"\n") + 1:]
    while data:
        cut = data.rfind(b"\n", 0, len(data) - 1) + 1
        if data[cut + TS:cut + TS + len(sep)] != sep:
            break
        data = data[:cut]
    step, head = TS + len(b" stdout ") + LINE, TS + len(b" stdout ")
    n = len(data) // step
    if len(data) == n * step and b" ----- run " not in data and b" stdout+ " not in data:
        if b"".join([data[i + TS:i + head] for i in range(0, len(data), step)]) == b" stdout " * n:
            return b"".join([data[i + head:i + step] for i in range(0, len(data), step)]), 0
    # Anything else (a piece and its continuation, a restart): line by line.
    data = SEPARATOR.sub(b"", data)
    torn = data.count(b" stdout+ ")
    data = CONTINUATION.sub(b"", data)
    return PREFIX.sub(b"", data), torn


def diagnose(data, ident, nlines):
    """Where a payload departs from lines 0..nlines-1: counts of lost,
    duplicated, out-of-order and malformed lines, and the first bad line."""
    seen = set()
    prev = -1
    dup = disorder = bad = 0
    first = None
    for no, line in enumerate(data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")):
        m = PAYLOAD.fullmatch(line)
        if not m or int(m.group(1)) != ident:
            bad += 1
            first = first if first is not None else (no, line[:120].decode("ascii", "replace"))
            continue
        k = int(m.group(2))
        if k in seen:
            dup += 1
        elif k < prev:
            disorder += 1
        if (k in seen or k < prev) and first is None:
            first = (no, line[:40].decode("ascii", "replace"))
        seen.add(k)
        prev = max(prev, k)
    lost = sum(1 for k in range(nlines) if k not in seen)
    return {"lost": lost, "duplicated": dup, "out_of_order": disorder, "malformed": bad,
            "extra": len(seen - set(range(nlines))), "first_bad": first}


def verify(path, ident, nlines, fmt):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return {"lost": nlines, "error": str(e)}
    data, torn = payload(data, fmt)
    if data == expected(ident, nlines):
        return {"torn": torn} if torn else {}
    out = diagnose(data, ident, nlines)
    if torn:
        out["torn"] = torn
    return out


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def measure(b, procs, seconds, rate, catchup_s, run_no):
    nlines = int(rate * seconds / LINE)
    per_proc = nlines * LINE
    fmt = getattr(b.mod.Adapter, "log_format", "raw")
    res = {"procs": procs, "seconds": seconds, "rate_bytes_per_s": rate, "format": fmt,
           "lines_per_proc": nlines, "run": run_no}
    r = bench.Run(b, f"lscale{procs}")
    try:
        free = shutil.disk_usage(r.dir).free
        if free < 1.5 * 1.4 * procs * per_proc:
            res["error"] = f"{free / 2**30:.1f} GiB free in {r.dir}, too little for {procs} x {per_proc / 2**20:.1f} MiB"
            return b.record("logs_scale", **res)
        svcs = []
        for i in range(procs):
            name = f"s{i:04d}"
            argv = [b.child, "lines", r.stamp_file, str(i), str(rate), str(seconds), f"{r.marker}/{name}"]
            svcs.append(Service(name, argv, os.path.join(r.dir, "logs", name)))
        r.adapter.write_config(svcs)
        r.adapter.start()
        if not r.wait_starts(procs, bench.START_TIMEOUT_S):
            res["error"] = f"only {r.stamps.n_starts}/{procs} children started"
            return b.record("logs_scale", **res)
        time.sleep(1.0)
        kids = [e[2] for e in r.stamps.starts()]
        mgr = r.manager_pids()
        c0, m0 = cpu_ticks(mgr), machine_busy()
        t0 = time.monotonic()
        for pid in kids:
            os.kill(pid, signal.SIGUSR1)
        pending = list(range(procs))
        end = t0 + seconds + catchup_s
        while pending and time.monotonic() < end:
            pending = [i for i in pending if r.adapter.log_bytes(svcs[i]) < per_proc]
            if pending:
                time.sleep(0.05)
        t1 = time.monotonic()
        c1, m1 = cpu_ticks(r.manager_pids()), machine_busy()
        r.stamps.poll()
        ends = [e[1] for e in r.stamps.events if e[0] == "E"]
        total_mib = procs * per_proc / 2**20
        cpu = cpu_delta_s(c0, c1)
        res.update(total_mib=total_mib, elapsed_s=t1 - t0, mib_per_s=total_mib / (t1 - t0),
                   mgr_cpu_s=cpu, mgr_cpu_s_per_mib=cpu / total_mib, mgr_procs=len(mgr),
                   machine_busy_pct=100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
                   writers_done=len(ends),
                   writers_late_s=(max(ends) - t0 - seconds) if ends else None)
        if pending:
            res["error"] = f"{len(pending)} of {procs} logs incomplete {catchup_s:.0f} s after the window"
        # Stop, let the manager write and close everything, then read the files.
        t2 = time.monotonic()
        r.adapter.stop()
        left = wait_gone(r.manager_pids(), t2 + bench.STOP_TIMEOUT_S)
        res["stop_s"] = time.monotonic() - t2
        if left:
            res["stop_error"] = f"{len(left)} manager processes still up"
        totals = {"lost": 0, "duplicated": 0, "out_of_order": 0, "malformed": 0, "extra": 0, "torn": 0}
        bad = []
        tv = time.monotonic()
        with multiprocessing.Pool(os.cpu_count()) as pool:
            checked = pool.starmap(verify, [(svc.log, i, nlines, fmt) for i, svc in enumerate(svcs)], chunksize=4)
        for i, v in enumerate(checked):
            for k in totals:
                totals[k] += v.get(k, 0)
            if v:
                bad.append({"proc": i, **v})
        res.update(verify_s=time.monotonic() - tv, files_ok=procs - len(bad), **totals,
                   bad_files=bad[:5])
        return b.record("logs_scale", **res)
    finally:
        r.finish()


def table(recs):
    print("| manager | procs × MiB/s × s | MiB/s total (ideal) | manager CPU s per MiB | manager CPU s "
          "| machine busy | writers late | files intact | lost / dup / torn / disorder |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in recs:
        if "mib_per_s" not in r:
            print(f"| {r['manager']} | {r.get('procs')} | – | – | – | – | – | – | {r.get('error')} |")
            continue
        ideal = r["procs"] * r["rate_bytes_per_s"] / 2**20
        late = r.get("writers_late_s")
        print(f"| {r['manager']} ({r['format']}) | {r['procs']} × {r['rate_bytes_per_s'] / 2**20:g} × {r['seconds']:g} "
              f"| {r['mib_per_s']:.0f} ({ideal:.0f}) | {r['mgr_cpu_s_per_mib'] * 1000:.2f} ms "
              f"| {r['mgr_cpu_s']:.1f} | {r['machine_busy_pct']:.0f} % "
              f"| {'–' if late is None else f'{late:.2f} s'} | {r.get('files_ok', 0)}/{r['procs']} "
              f"| {r.get('lost', '–')} / {r.get('duplicated', '–')} / {r.get('torn', '–')} / "
              f"{r.get('out_of_order', '–')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--managers", default="plain,procman,procman_ts")
    ap.add_argument("--procs", type=int, default=int(ENV("PROCS", "500")))
    ap.add_argument("--seconds", type=float, default=float(ENV("DURATION_S", "20")))
    ap.add_argument("--rate", type=float, default=float(ENV("RATE", str(1 << 20))))
    ap.add_argument("--runs", type=int, default=int(ENV("RUNS", "1")))
    ap.add_argument("--out")
    a = ap.parse_args()
    results = ENV("BENCH_RESULTS") or os.path.join(bench.REPO, "target", "bench-results")
    out = a.out or os.path.join(results, "logs-scale.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    catchup = float(ENV("CATCHUP_TIMEOUT_S", "120"))
    recs, failed = [], False
    for m in a.managers.split(","):
        try:
            b = bench.Bench(m, out)
        except Unavailable as e:
            # Asked for and not measured: the run did not do its job.
            bench.log(f"{m}: unavailable: {e}")
            failed = True
            continue
        for run_no in range(1, a.runs + 1):
            rec = measure(b, a.procs, a.seconds, a.rate, catchup, run_no)
            recs.append(rec)
            failed |= bool(rec.get("error") or rec.get("files_ok") != a.procs)
    table(recs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
