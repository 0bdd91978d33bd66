#!/usr/bin/env python3
"""procman beside plain: medians, ratio procman/plain, the goals (met / not
met), and the cost per process at each N with its growth, so that a cost
that grows with N (a quadratic total) shows.

    python3 benches/ratios.py PLAIN.jsonl PROCMAN.jsonl [PEERS_DIR]

Both files are the harness's JSON lines (bench.py --out); every lifecycle N
found in them gets its rows. PEERS_DIR (default: benches/harness/results)
adds the best peer's median for context; it comes from another session, so
it is not part of any ratio. Only the Python standard library is used.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness"))
from report import load as load_all  # noqa: E402

PEERS = ["supervisor", "circus", "circus-cd0.1", "pm2", "horust", "horust-pipe", "runit", "s6"]
# N from which the lifecycle goals apply; smaller N are context.
GOAL_FROM_N = 500


def load(path):
    """The records of one JSON-lines file; none when it does not exist."""
    return load_all([path]) if path and os.path.exists(path) else []


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


def rows(ns):
    """(label, metric, field, n, pooled, unit, goal) for every N.
    goal: ("ratio", 1.5) = procman <= 1.5 x plain; ("abs", 8) = procman <= 8
    (unit); ("zero",) = every run 0; None = no goal (context only)."""
    out = []
    for n in ns:
        gate = n >= GOAL_FROM_N
        out += [
            (f"start N={n}", "lifecycle", "start_s", n, False, "ms", ("ratio", 1.5) if gate else None),
            (f"manager RSS, N={n}", "lifecycle", "rss_mib", n, False, "MiB", ("abs", 8.0) if n == 500 else None),
            (f"idle CPU, N={n}", "lifecycle", "cpu_pct", n, False, "%", ("zero",) if gate else None),
            (f"stop N={n}", "lifecycle", "stop_s", n, False, "ms", ("ratio", 1.5) if gate else None),
        ]
    out.append(("restart latency (SIGKILL -> exec)", "restart", "latencies_s", None, True, "ms", ("ratio", 1.5)))
    return out


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
                out.append(f"{r.get('manager')} {r.get('metric')} n={r.get('n', '-')} run={r.get('run')}: {r[k]}")
    return out


def ratio_table(plain, pm, peers, ns):
    print("| metric | plain (median) | procman (median) | procman/plain | runs or samples (plain/procman) "
          "| best peer (other session) | goal | verdict |")
    print("|---|---:|---:|---:|---|---|---|---|")
    for label, metric, field, n, pooled, unit, goal in rows(ns):
        pv = values(plain, metric, field, n, pooled)
        mv = values(pm, metric, field, n, pooled)
        if not pv and not mv:
            continue
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


def per_process(recs, field, ns, slope):
    """Cost per process at each N: median / N, or with `slope` the growth of
    the median from the previous N divided by the processes added (the first
    N has no slope). None where a median is missing."""
    meds = [med(values(recs, "lifecycle", field, n)) for n in ns]
    if not slope:
        return [m / n if m is not None else None for m, n in zip(meds, ns)]
    out = [None]
    for i in range(1, len(ns)):
        a, b = meds[i - 1], meds[i]
        out.append((b - a) / (ns[i] - ns[i - 1]) if a is not None and b is not None else None)
    return out


def growth_table(plain, pm, ns):
    """Per-process costs side by side; the last column is the last per-process
    cost over the first: ≈ 1 for a linear total, ≈ N_last / N_first for a
    quadratic one."""
    metrics = [
        ("start / N", "start_s", False, 1e3, "ms"),
        ("start slope", "start_s", True, 1e3, "ms"),
        ("stop / N", "stop_s", False, 1e3, "ms"),
        ("stop slope", "stop_s", True, 1e3, "ms"),
        ("RSS slope", "rss_mib", True, 1024, "KiB"),
    ]
    print("| per process | manager | " + " | ".join(f"N={n}" for n in ns) + " | last / first |")
    print("|---|---|" + "---:|" * (len(ns) + 1))
    lines = []
    for label, field, slope, scale, unit in metrics:
        for name, recs in (("plain", plain), ("procman", pm)):
            vals = per_process(recs, field, ns, slope)
            shown = [v for v in vals if v is not None]
            if not shown:
                continue
            cells = ["–" if v is None else f"{v * scale:.3g} {unit}" for v in vals]
            grow = f"{shown[-1] / shown[0]:.2f}×" if len(shown) > 1 and shown[0] > 0 else "–"
            print(f"| {label} | {name} | " + " | ".join(cells) + f" | {grow} |")
            lines.append(f"{name} {label}, per process: " + ", ".join(c for c in cells if c != "–")
                         + (f" ({grow} from first to last)" if grow != "–" else ""))
    print()
    print("A slope at N is the growth of the median from the previous N, per process added (the first N "
          "has none): the marginal cost, without the fixed cost that / N spreads over small N.")
    print()
    for line in lines:
        print(f"- {line}")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    plain, pm = load(argv[1]), load(argv[2])
    here = os.path.dirname(os.path.abspath(__file__))
    peers_dir = argv[3] if len(argv) > 3 else os.path.join(here, "harness", "results")
    peers = {name: load(os.path.join(peers_dir, f"{name}.jsonl")) for name in PEERS}
    ns = sorted({r["n"] for r in plain + pm if r.get("metric") == "lifecycle" and r.get("n") is not None})
    ratio_table(plain, pm, peers, ns)
    if len(ns) > 1:
        print()
        print("### Cost per process as N grows (flat = linear total)")
        print()
        growth_table(plain, pm, ns)
    errs = errors(plain) + errors(pm)
    if errs:
        print("\nErrors recorded by the harness:")
        for e in errs:
            print(f"- {e}")


if __name__ == "__main__":
    main(sys.argv)
