#!/usr/bin/env bash
# Side-by-side benchmark of procman against `plain` (a C fork/exec loop, the
# lower bound), with the harness in benches/harness/.
#
#   benches/run.sh              # from anywhere in a clone: it cd's to the root
#
# What it does:
#   1. cargo build --release -p procman (unless SKIP_BUILD=1), and measures a
#      copy of the binary, so that a rebuild during the run cannot swap it
#   2. raises the limits the largest N needs (benches/harness/setup.sh
#      says which, and prints what it raised)
#   3. runs the harness for `plain` and `procman`: `lifecycle` at every N
#      (start, idle CPU and RSS, stop) and `restart`, appending JSON lines to
#      target/bench-results/{plain,procman}.jsonl
#   4. prints the harness's report (procman beside the peers' recorded
#      figures) and the ratio table (procman/plain per N, the goals, and the
#      cost per process as N grows), also written to report.md and ratios.md
#
# Knobs (environment): N (50,500; e.g. 50,500,5000), RUNS (3), RESTART_RUNS
# (1), RESTARTS (10), IDLE_S (30, procman's idle window; 0 skips it),
# PLAIN_IDLE_S (10), BENCH_RESULTS (target/bench-results), FRESH=1 (delete
# earlier plain/procman results first; by default results are appended and
# the medians pool every run in the files), SKIP_BUILD=1, and the harness's
# own (SETTLE_S, START_TIMEOUT_S, STOP_TIMEOUT_S, MIN_UPTIME_S, BENCH_WORK,
# BENCH_KEEP=1, CC): see benches/README.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
harness=$root/benches/harness
# shellcheck source=harness/setup.sh
. "$harness/setup.sh"
need_tools benches/run.sh

results=${BENCH_RESULTS:-$root/target/bench-results}
mkdir -p "$results"
results=$(cd "$results" && pwd)

build_procman benches/run.sh "$results"
snap=$PROCMAN
export BENCH_RESULTS=$results

if [ "${FRESH:-0}" = 1 ]; then
  rm -f "$results/plain.jsonl" "$results/procman.jsonl"
fi

n=${N:-50,500}
runs=${RUNS:-3}
rruns=${RESTART_RUNS:-1}
raise_limits "$(tr ',' '\n' <<<"$n" | sort -n | tail -1)"

# The peers' figures, for context only (measured in another session). The
# peers' `plain` is left out on purpose: `plain` must be this session's, so
# that the ratios compare figures taken on the same machine at the same time.
for f in "$harness"/results/*.jsonl; do
  case $(basename "$f") in plain.jsonl | procman.jsonl) continue ;; esac
  cp "$f" "$results/"
done

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: nproc=$(nproc) kernel=$(uname -r) load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "limits: nofile=$(ulimit -Sn)/$(ulimit -Hn) nproc=$(ulimit -Su) pid_max=$(cat /proc/sys/kernel/pid_max)"
  echo "procman: $("$snap" --version) sha256=$(sha256sum "$snap" | cut -d' ' -f1)"
  if git rev-parse --git-dir >/dev/null 2>&1; then
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
  fi
  echo "command: N=$n RUNS=$runs RESTART_RUNS=$rruns RESTARTS=${RESTARTS:-10} IDLE_S=${IDLE_S:-30} PLAIN_IDLE_S=${PLAIN_IDLE_S:-10} benches/run.sh"
} | tee "$results/session.txt" >&2

failed=0
py() {
  echo "== $*" >&2
  in_child python3 "$@" || { echo "benches/run.sh: failed (exit $?): $*" >&2; failed=1; }
}
IDLE_S=${PLAIN_IDLE_S:-10} py "$harness/bench.py" plain --metrics lifecycle --n "$n" --runs "$runs" --out "$results/plain.jsonl"
IDLE_S=${IDLE_S:-30} py "$harness/bench.py" procman --metrics lifecycle --n "$n" --runs "$runs" --out "$results/procman.jsonl"
py "$harness/bench.py" plain --metrics restart --runs "$rruns" --out "$results/plain.jsonl"
py "$harness/bench.py" procman --metrics restart --runs "$rruns" --out "$results/procman.jsonl"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/session.txt" >&2

python3 "$harness/report.py" "$results"/*.jsonl > "$results/report.md"
python3 "$root/benches/ratios.py" "$results/plain.jsonl" "$results/procman.jsonl" "$harness/results" > "$results/ratios.md"
cat "$results/report.md"
echo "## procman / plain (this session) and the goals"
echo
cat "$results/ratios.md"
echo >&2
echo "wrote $results/report.md (procman beside the peers) and $results/ratios.md" >&2
exit "$failed"
