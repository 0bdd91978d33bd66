#!/usr/bin/env python3
"""procman beside plain: medians, ratio procman/plain, and the goals of
design.md section 11 (met / not met).

    python3 benches/ratios.py PLAIN.jsonl PROCMAN.jsonl [PEERS_DIR]

Both files are the harness's JSON lines (bench.py --out). PEERS_DIR (default:
../shared/bench/results beside the repository) adds the best peer's median
for context; it comes from another session, so it is not part of any ratio.
Only the Python standard library is used.
"""
import json
import os
import statistics
import sys

PEERS = ["supervisor", "circus", "circus-cd0.1", "pm2", "horust", "horust-pipe", "runit", "s6"]


def load(path):
    recs = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    recs.append(json.loads(line))
    return recs


def values(recs, metric, field, n=None, pooled=False):
    out = []
    for r in recs:
        if r.get("metric") != metric or (n is not None and r.get("n") != n):
            continue
        v = r.get(field)
        if pooled:
            out.extend(v or [])
        elif v is not None:
            out.append(v)
    return out


def med(vals):
    return statistics.median(vals) if vals else None


# (label, metric, field, n, pooled, unit, goal)
# goal: ("ratio", 1.5) = procman <= 1.5 x plain; ("abs", 8) = procman <= 8 (unit);
#       ("zero",) = every run 0; None = no goal (context only)
ROWS = [
    ("start N=50", "lifecycle", "start_s", 50, False, "ms", None),
    ("start N=500", "lifecycle", "start_s", 500, False, "ms", ("ratio", 1.5)),
    ("manager RSS, N=50", "lifecycle", "rss_mib", 50, False, "MiB", None),
    ("manager RSS, N=500", "lifecycle", "rss_mib", 500, False, "MiB", ("abs", 8.0)),
    ("idle CPU, N=50", "lifecycle", "cpu_pct", 50, False, "%", None),
    ("idle CPU, N=500", "lifecycle", "cpu_pct", 500, False, "%", ("zero",)),
    ("restart latency (SIGKILL -> exec)", "restart", "latencies_s", None, True, "ms", ("ratio", 1.5)),
    ("stop N=50", "lifecycle", "stop_s", 50, False, "ms", None),
    ("stop N=500", "lifecycle", "stop_s", 500, False, "ms", ("ratio", 1.5)),
]


def fmt(v, unit):
    if v is None:
        return "–"
    if unit == "ms":
        v *= 1000
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    if unit == "%":
        return f"{v:.2f}"
    return f"{v:.1f}"


def goal_text(goal, unit):
    if goal is None:
        return "–"
    if goal[0] == "ratio":
        return f"≤ {goal[1]}× plain"
    if goal[0] == "abs":
        return f"≤ {goal[1]:g} {unit}"
    return "0 %"


def verdict(goal, p, m, pm_vals):
    if goal is None or m is None:
        return "–" if goal is None else "not measured"
    if goal[0] == "ratio":
        if not p:
            return "– (plain is 0)"
        return "met" if m / p <= goal[1] else "not met"
    if goal[0] == "abs":
        return "met" if m <= goal[1] else "not met"
    return "met" if max(pm_vals) == 0 else "not met"


def errors(recs):
    out = []
    for r in recs:
        for k in ("error", "stop_error"):
            if r.get(k):
                out.append(f"{r.get('metric')} n={r.get('n', '-')} run={r.get('run')}: {r[k]}")
    return out


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    plain, pm = load(argv[1]), load(argv[2])
    here = os.path.dirname(os.path.abspath(__file__))
    peers_dir = argv[3] if len(argv) > 3 else os.path.join(here, "..", "..", "shared", "bench", "results")
    peers = {name: load(os.path.join(peers_dir, f"{name}.jsonl")) for name in PEERS}
    print("| metric | plain (median) | procman (median) | procman/plain | runs or samples (plain/procman) "
          "| best peer (other session) | goal (design.md §11) | verdict |")
    print("|---|---:|---:|---:|---|---|---|---|")
    for label, metric, field, n, pooled, unit, goal in ROWS:
        pv = values(plain, metric, field, n, pooled)
        mv = values(pm, metric, field, n, pooled)
        p, m = med(pv), med(mv)
        ratio = f"{m / p:.2f}×" if p and m is not None else "–"
        best = None
        for name, recs in peers.items():
            v = med(values(recs, metric, field, n, pooled))
            if v is not None and (best is None or v < best[1]):
                best = (name, v)
        best_s = f"{fmt(best[1], unit)} ({best[0]})" if best else "–"
        print(f"| {label} ({unit}) | {fmt(p, unit)} | {fmt(m, unit)} | {ratio} | {len(pv)}/{len(mv)} "
              f"| {best_s} | {goal_text(goal, unit)} | {verdict(goal, p, m, mv)} |")
    errs = errors(plain) + errors(pm)
    if errs:
        print("\nErrors recorded by the harness:")
        for e in errs:
            print(f"- {e}")
    print("\nNot measured: log capture (`logs`): procman does not capture logs yet "
          "(children inherit the manager's stdout/stderr).")


if __name__ == "__main__":
    main(sys.argv)
