#!/usr/bin/env bash
# Performance regression guard (a CI step): a small, fast variant of
# benches/run.sh that fails when procman falls too far behind `plain`
# measured in the same run.
#
#   benches/guard.sh            # from anywhere in a clone; about a minute after the build
#
# It builds target/release/procman (unless SKIP_BUILD=1), then alternates
# plain and procman: `lifecycle` at N=GUARD_N (200), RUNS (3) runs each, with
# no idle window (IDLE_S=0: start, RSS and stop only), then `restart` with
# RESTARTS (20) kills each. It prints the medians and procman/plain; a
# guarded ratio (start, restart) over THRESHOLD (3.0) is measured again
# (RETRIES, 2), so that one noisy moment on a shared machine does not fail
# the build, and it exits 1 when the ratio is still over, naming the metric,
# the ratio and the threshold; 2 when a measurement failed. Stop is printed
# for information, not guarded (at N=200 it is a few milliseconds, too
# noisy on a shared machine).
#
# Knobs: THRESHOLD (3.0), RETRIES (2), GUARD_N (200), RUNS (3), RESTARTS (20),
# SETTLE_S (0.5), MIN_UPTIME_S (0.5, how long a child runs before it is
# killed), SKIP_BUILD=1, BENCH_RESULTS (target/bench-guard: the last
# round's results in 1/; emptied first),
# and the harness's (BENCH_WORK, BENCH_KEEP=1, CC): see benches/README.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
harness=$root/benches/harness
# shellcheck source=harness/setup.sh
. "$harness/setup.sh"
need_tools benches/guard.sh

threshold=${THRESHOLD:-3.0}
n=${GUARD_N:-200}
runs=${RUNS:-3}
results=${BENCH_RESULTS:-$root/target/bench-guard}
mkdir -p "$results"
results=$(cd "$results" && pwd)
rm -rf "$results/1" "$results/2"

build_procman benches/guard.sh "$results"
export IDLE_S=0 SETTLE_S=${SETTLE_S:-0.5} RESTARTS=${RESTARTS:-20} MIN_UPTIME_S=${MIN_UPTIME_S:-0.5}
raise_limits "$n"

bench() {
  in_child python3 "$harness/bench.py" "$@" || { echo "benches/guard.sh: the harness failed (exit $?): bench.py $*" >&2; exit 2; }
}
# measure DIR METRIC...: plain and procman, alternately, into DIR/{plain,procman}.jsonl
measure() {
  local dir=$1 metric run m started
  shift
  mkdir -p "$dir"
  rm -f "$dir"/*.jsonl
  started=$(date +%s)
  for metric in "$@"; do
    if [ "$metric" = start ]; then
      for run in $(seq 1 "$runs"); do
        for m in plain procman; do
          echo "== lifecycle N=$n, run $run/$runs: $m" >&2
          bench "$m" --metrics lifecycle --n "$n" --runs 1 --out "$dir/$m.jsonl"
        done
      done
    else
      for m in plain procman; do
        echo "== restart x$RESTARTS: $m" >&2
        bench "$m" --metrics restart --runs 1 --out "$dir/$m.jsonl"
      done
    fi
  done
  echo "== measured in $(($(date +%s) - started)) s; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
}
# evaluate DIR: prints the table; writes the guarded metrics over the
# threshold to DIR/over; exit 0 (all within), 1 (one over) or 2 (one missing)
evaluate() {
  python3 - "$1" "$n" "$threshold" <<'PY'
import os
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "benches"))
from ratios import errors, fmt, load, med, values  # noqa: E402

res, n, threshold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
plain, pm = load(f"{res}/plain.jsonl"), load(f"{res}/procman.jsonl")
rows = [  # key, label, metric, field, n, pooled, guarded
    ("start", f"start N={n}", "lifecycle", "start_s", n, False, True),
    ("restart", "restart (SIGKILL -> exec)", "restart", "latencies_s", None, True, True),
    ("stop", f"stop N={n}", "lifecycle", "stop_s", n, False, False),
]
print("| metric | plain (median) | procman (median) | procman/plain | samples | threshold | |")
print("|---|---:|---:|---:|---|---:|---|")
over, missing = [], []
for key, label, metric, field, nn, pooled, guarded in rows:
    if not any(r.get("metric") == metric for r in plain + pm):
        continue   # not measured in this round
    pv, mv = values(plain, metric, field, nn, pooled), values(pm, metric, field, nn, pooled)
    p, m = med(pv), med(mv)
    ratio = m / p if p and m is not None else None
    if ratio is None:
        verdict = "not measured"
        if guarded:
            missing.append(label)
    elif not guarded:
        verdict = "(not guarded)"
    elif ratio > threshold:
        verdict = "OVER"
        over.append((key, label, ratio))
    else:
        verdict = "ok"
    print(f"| {label} (ms) | {fmt(p, 'ms')} | {fmt(m, 'ms')} | "
          f"{'–' if ratio is None else f'{ratio:.2f}×'} | {len(pv)}/{len(mv)} "
          f"| {f'{threshold:g}×' if guarded else '–'} | {verdict} |")
for e in errors(plain) + errors(pm):
    print(f"harness error: {e}")
with open(f"{res}/over", "w") as f:
    for key, label, ratio in over:
        f.write(f"{key} {label} is {ratio:.2f}x plain, over the threshold {threshold:g}x\n")
for label in missing:
    print(f"performance guard FAILED: {label} was not measured (see the harness's errors above)",
          file=sys.stderr)
sys.exit(2 if missing else 1 if over else 0)
PY
}

measure "$results/1" start restart
rc=0
evaluate "$results/1" || rc=$?
retries=${RETRIES:-2}
while [ "$rc" = 1 ] && [ "$retries" -gt 0 ]; do
  retries=$((retries - 1))
  again=$(cut -d' ' -f1 "$results/1/over")
  sed 's/^[a-z]* /== over: /' "$results/1/over" >&2
  echo "== measuring again ($(echo $again)), to tell a regression from a noisy moment" >&2
  measure "$results/2" $again
  rc=0
  evaluate "$results/2" || rc=$?
  rm -rf "$results/1" && mv "$results/2" "$results/1"
done
case $rc in
  0) echo "performance guard passed: every guarded ratio is at most ${threshold}x plain" >&2 ;;
  1) sed 's/^[a-z]* /performance guard FAILED: /' "$results/1/over" >&2 ;;
esac
exit "$rc"
