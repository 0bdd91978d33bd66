#!/usr/bin/env bash
# Side-by-side benchmark of procman against `plain` (a C fork/exec loop, the
# lower bound), using the shared harness in ../shared/bench.
#
#   benches/run.sh              # from the repository root (or anywhere: it cd's there)
#
# What it does:
#   1. cargo build --release -p procman
#   2. runs the harness for `plain` and `procman`, metrics `lifecycle`
#      (N = 50 and 500) and `restart`, appending JSON lines to
#      target/bench-results/{plain,procman}.jsonl
#   3. copies the peers' recorded figures (supervisord, circus, pm2, horust,
#      runit, s6) next to them for context, and prints the report
#      (also written to target/bench-results/report.md)
#
# Not measured: `logs` (procman does not capture logs yet: children inherit
# the manager's stdout/stderr) and `crashloop` (not among the goals).
#
# Knobs (environment): BENCH_DIR (harness, default ../shared/bench beside the
# repository), RUNS (3), RESTART_RUNS (1), RESTARTS (10), IDLE_S (30, procman's
# idle window), PLAIN_IDLE_S (10), N (50,500), BENCH_RESULTS
# (target/bench-results), FRESH=1 (delete this session's previous
# plain/procman results first; by default results are appended, and the
# report's medians pool every run in the files), SKIP_BUILD=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bench=${BENCH_DIR:-$root/../shared/bench}
if [ ! -f "$bench/bench.py" ] || [ ! -f "$bench/report.py" ] || [ ! -f "$bench/adapters/procman.py" ]; then
  echo "benches/run.sh: the benchmark harness was not found at $bench" >&2
  echo "  expected bench.py, report.py and adapters/procman.py there: check out the shared" >&2
  echo "  'bench' directory at ../shared/bench beside this repository, or set BENCH_DIR." >&2
  exit 2
fi
bench=$(cd "$bench" && pwd)
for tool in python3 cargo "${CC:-cc}"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "benches/run.sh: '$tool' is needed and not on PATH" >&2
    exit 2
  fi
done

results=${BENCH_RESULTS:-$root/target/bench-results}
mkdir -p "$results"
results=$(cd "$results" && pwd)

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== cargo build --release -p procman" >&2
  cargo build --release -p procman
fi
bin=$root/target/release/procman
[ -x "$bin" ] || { echo "benches/run.sh: $bin was not built" >&2; exit 2; }

# Measure a private copy, so that a rebuild of target/ during the run
# (another build, an IDE) cannot swap the binary between measurements.
snap=$results/procman.bin
cp "$bin" "$snap"
export PROCMAN=$snap BENCH_RESULTS=$results

if [ "${FRESH:-0}" = 1 ]; then
  rm -f "$results/plain.jsonl" "$results/procman.jsonl"
fi

# The peers' figures, for context only (measured in another session). The
# peers' `plain` is left out on purpose: `plain` must be this session's, so
# that the ratios compare figures taken on the same machine at the same time.
for f in "$bench"/results/*.jsonl; do
  [ -e "$f" ] || continue
  case $(basename "$f") in plain.jsonl | procman.jsonl) continue ;; esac
  cp "$f" "$results/"
done

n=${N:-50,500}
runs=${RUNS:-3}
rruns=${RESTART_RUNS:-1}
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: nproc=$(nproc) kernel=$(uname -r) load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "procman: $("$snap" --version) sha256=$(sha256sum "$snap" | cut -d' ' -f1)"
  if git rev-parse --git-dir >/dev/null 2>&1; then
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
  fi
} | tee "$results/session.txt" >&2

failed=0
py() {
  echo "== $*" >&2
  python3 "$@" || { echo "benches/run.sh: failed (exit $?): $*" >&2; failed=1; }
}
IDLE_S=${PLAIN_IDLE_S:-10} py "$bench/bench.py" plain --metrics lifecycle --n "$n" --runs "$runs" --out "$results/plain.jsonl"
IDLE_S=${IDLE_S:-30} py "$bench/bench.py" procman --metrics lifecycle --n "$n" --runs "$runs" --out "$results/procman.jsonl"
py "$bench/bench.py" plain --metrics restart --runs "$rruns" --out "$results/plain.jsonl"
py "$bench/bench.py" procman --metrics restart --runs "$rruns" --out "$results/procman.jsonl"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/session.txt" >&2

python3 "$bench/report.py" "$results"/*.jsonl > "$results/report.md"
python3 "$root/benches/ratios.py" "$results/plain.jsonl" "$results/procman.jsonl" "$bench/results" > "$results/ratios.md"
cat "$results/report.md"
echo "## procman / plain (this session) and the goals of design.md §11"
echo
cat "$results/ratios.md"
echo >&2
echo "wrote $results/report.md (procman beside the peers) and $results/ratios.md" >&2
exit "$failed"
