#!/usr/bin/env bash
# Log capture throughput: one child floods FLOOD_BYTES (1 GiB) of 100-byte
# lines; measured for `plain` (the child writes its log file itself: the
# limit), procman in `raw` format (exact bytes), and procman in `plain`
# format (the procman_ts adapter: a timestamp and the stream before every
# line), with the manager's CPU seconds; supervisord too when it is installed
# (on PATH or $SUPERVISORD; see benches/harness/README.md), the best peer at
# log capture. With the harness in benches/harness/. One warm-up round, then
# RUNS rounds in which the managers take turns; medians.
#
#   benches/logs.sh          # from anywhere in a clone; RUNS=3 by default
#
# Knobs: RUNS (3), FLOOD_BYTES, SKIP_BUILD=1, BENCH_RESULTS
# (target/bench-results; logs-MANAGER.jsonl and logs-warmup.jsonl there are
# replaced).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
harness=$root/benches/harness
results=${BENCH_RESULTS:-$root/target/bench-results}
mkdir -p "$results"
# shellcheck source=harness/setup.sh
. "$harness/setup.sh"
need_tools benches/logs.sh
build_procman benches/logs.sh "$results"
for m in plain procman procman_ts supervisor warmup; do rm -f "$results/logs-$m.jsonl"; done
# Round 0 warms up (not counted): the first flood after other work runs on
# memory the host has taken back (see docs/performance.md); a manager that
# is not installed (supervisord) is found there, reported and skipped.
# Then the managers take turns, one run each per round, so that a slow
# spell of the machine falls on all of them alike.
managers=
for m in plain procman procman_ts supervisor; do
  if in_child python3 "$harness/bench.py" "$m" --metrics logs --runs 1 --out "$results/logs-warmup.jsonl"; then
    managers="$managers $m"
  else
    echo "benches/logs.sh: $m not measured" >&2
  fi
done
for round in $(seq "${RUNS:-3}"); do
  for m in $managers; do
    in_child python3 "$harness/bench.py" "$m" --metrics logs --runs 1 --out "$results/logs-$m.jsonl" ||
      echo "benches/logs.sh: $m round $round not measured" >&2
  done
done
python3 - "$results" <<'PY'
import json, statistics as st, sys
res = sys.argv[1]
rows = {}
for m in ("plain", "procman", "procman_ts", "supervisor"):
    try:
        rs = [json.loads(l) for l in open(f"{res}/logs-{m}.jsonl") if '"mib_per_s"' in l]
    except OSError:
        rs = []
    if rs:
        rows[m] = (st.median(r["mib_per_s"] for r in rs), st.median(r["mgr_cpu_s"] / (r["bytes"] / 2**30) for r in rs), len(rs))
p = rows["plain"][0]
print("| manager | MiB/s (median) | ×plain | manager CPU s per GiB | runs |")
print("|---|---:|---:|---:|---:|")
for m, (mib, cpu, n) in rows.items():
    print(f"| {m} | {mib:.0f} | {mib / p:.2f} | {cpu:.2f} | {n} |")
PY
