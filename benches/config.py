#!/usr/bin/env python3
"""Config load: what `procman validate -c FILE` costs with N processes.

For each N (1,000, 10,000 and 87,567 by default) it writes a config of N
realistic processes (control with executable, arguments, environment and
a shutdown timeout; a restart policy; logging with rotation, some with a file of
their own; resource limits on half of them; an http, tcp or exec health
check on a quarter; `depends_on` on a fifth, some with condition healthy;
a file aggregation target), runs `procman validate -c FILE` RUNS (5)
times and reports the median wall time (min-max), the largest max RSS
(os.wait4's rusage of each run, taken by a small Python of its own, whose
pages a child's max RSS would count: about 5 MiB, below anything
`procman validate` uses), and the cost per process: the total
divided by N, and the growth from the size before divided by the
processes added (flat when the load is linear). The CPU time (user and
system, from the same rusage) is shown too: on a busy machine the wall
time includes waiting for a CPU.

Then the same configs with one error per 1,000 processes (an unknown key,
a wrong duration, an unknown `depends_on` id, a repeated id, a wrong
number, in turn): the command must exit 2 and list exactly those errors,
each at its line, column and key path, and its time must stay linear too.

    benches/config.py PROCMAN

Knobs: N (`1000,10000,87567`), RUNS (5), ERRORS=0 (skip the error
configs), CONFIG_BENCH_DIR (/tmp/config-bench, removed unless KEEP=1).
Standard library only. Prints Markdown tables and a last line of JSON.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

NS = [int(n) for n in os.environ.get("N", "1000,10000,87567").split(",")]
RUNS = int(os.environ.get("RUNS", "5"))
ERRORS = os.environ.get("ERRORS", "1") != "0"
ROOT = os.environ.get("CONFIG_BENCH_DIR", "/tmp/config-bench")


class Writer:
    """Lines of YAML, and where each injected error is expected."""

    def __init__(self):
        self.lines = []
        self.expected = []  # (line, column, key path)

    def add(self, text):
        self.lines.append(text)

    def error_at(self, token, path):
        """The last line holds an error at `token` (its first occurrence)."""
        line = self.lines[-1]
        self.expected.append((len(self.lines), line.index(token) + 1, path))

    def either(self, wrong, good, bad, token, path):
        """The line `bad`, an error at `token` named `path`, when `wrong`;
        else the line `good`."""
        if wrong:
            self.add(bad)
            self.error_at(token, path)
        elif good is not None:
            self.add(good)

    def text(self):
        return "\n".join(self.lines) + "\n"


def pid(i):
    return f"svc-{i:05d}"


def health(w, i):
    kind = (i // 4) % 3
    w.add("      health_check:")
    if kind == 0:
        w.add(f'        http_endpoint: "http://127.0.0.1:{20000 + i % 40000}/health"')
        w.add("        expected_status: [200, 204]")
    elif kind == 1:
        w.add(f'        tcp_endpoint: "127.0.0.1:{20000 + i % 40000}"')
    else:
        w.add('        command: ["/bin/true"]')
    w.add('        interval: "30s"')
    w.add('        timeout: "5s"')
    w.add("        failure_threshold: 3")


def has_health(i):
    return i % 4 == 0


def entry(w, i, error):
    """Process i; `error` (0-4, or None) says which mistake to make in it."""
    path = f"managed_processes[{i}]"
    w.add(f'  - id: "{pid(i - 1) if error == 3 else pid(i)}"')
    if error == 3:
        w.error_at(f'"{pid(i - 1)}"', f"{path}.id")
    w.add("    type: standard_managed")
    if i % 3 == 0:
        w.add(f"    profile_type: {('web', 'worker', 'database')[i % 9 // 3]}")
    w.add("    management:")
    w.add("      control:")
    w.add('        executable: "/usr/bin/python3"')
    w.add(f'        arguments: ["-m", "http.server", "{20000 + i % 40000}"]')
    w.add(f'        working_directory: "/srv/app{i % 7}"')
    w.add("        environment:")
    w.add('          APP_ENV: "production"')
    w.add(f'          APP_INDEX: "{i}"')
    w.add('        shutdown_timeout: "5s"')
    w.add("      restart_policy:")
    w.add("        strategy: on_failure")
    w.add("        max_attempts: 5")
    policy = f"{path}.management.restart_policy"
    w.either(error == 1, '        restart_delay: "1s"', '        restart_delay: "5 parsecs"',
             '"5 parsecs"', f"{policy}.restart_delay")
    w.add("        backoff_multiplier: 1.5")
    w.either(error == 0, None, '        restart_dely: "2s"', "restart_dely",
             f"{policy}.restart_dely")
    w.add("      logging:")
    w.add("        format: plain")
    if i % 5 == 0:
        w.add(f'        file: "logs/{pid(i)}.log"')
    w.add("        rotation: {max_size_mb: 50, max_files: 3}")
    if i % 2 == 0 or error == 4:
        w.add("      resource_limits:")
        w.either(error == 4, "        max_memory_mb: 256", "        max_memory_mb: lots",
                 "lots", f"{path}.management.resource_limits.max_memory_mb")
        w.add("        max_cpu_percent: 50")
        w.add("        max_file_descriptors: 1024")
    if has_health(i):
        health(w, i)
    if error == 2:
        w.add(f"    depends_on: [nosuch-{i}]")
        w.error_at(f"nosuch-{i}", f"{path}.depends_on[0]")
    elif i % 10 == 5:
        w.add(f"    depends_on: [{pid(i - 1)}]")
    elif i % 10 == 9 and i >= 9:
        # i - 1 is a multiple of 4 when i % 4 == 1: it has a health check.
        dep = i - 1 if has_health(i - 1) else i - 5
        w.add("    depends_on:")
        w.add(f"      - id: {pid(dep)}")
        w.add(f"        condition: {'healthy' if has_health(dep) else 'started'}")


def config(n, errors, root):
    """The text of a config of n processes (under the loader's 64 MiB for
    87,567 of them), and where its injected errors are."""
    w = Writer()
    w.add("process_manager:")
    w.add("  port: 0")
    w.add('  force_shutdown_timeout: "30s"')
    w.add(f'  log_dir: "{root}/logs"')
    w.add("managed_processes:")
    for i in range(n):
        error = (i // 1000) % 5 if errors and i % 1000 == 999 else None
        entry(w, i, error)
    w.add("log_collection:")
    w.add("  enabled: true")
    w.add("  global_aggregation:")
    w.add("    enabled: true")
    w.add("    targets:")
    w.add(f'      - {{type: file, path: "{root}/all.log", format: json}}')
    w.add("      - {type: process_manager_stdout, format: plain}")
    return w.text(), w.expected


# Runs one command and prints its wall time, CPU time, max RSS and exit
# status. It runs in a small Python of its own: a child's max RSS counts
# the pages of the process that forked it (they are its own until it
# execs), and this script holds whole configs in memory.
MEASURE = """
import os, sys, time
out, err, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
took = time.monotonic() - t0
print(took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_once(procman, path):
    """Wall time (s), CPU time (s), max RSS (KiB), exit status, stdout and
    stderr of one run."""
    out_path, err_path = path + ".out", path + ".err"
    helper = [sys.executable, "-I", "-S", "-c", MEASURE, out_path, err_path,
              procman, "validate", "-c", path]
    report = subprocess.run(helper, capture_output=True, text=True, check=True).stdout.split()
    took, cpu, maxrss, code = float(report[0]), float(report[1]), int(report[2]), int(report[3])
    with open(out_path, encoding="utf-8", errors="replace") as f:
        stdout = f.read()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        stderr = f.read()
    return took, cpu, maxrss, code, stdout, stderr


def check_valid(n, path, code, stdout, stderr):
    if code != 0 or f"valid ({n} processes" not in stdout:
        sys.exit(f"{path}: expected valid with {n} processes, exit {code}:\n"
                 f"{stdout[:2000]}\n{stderr[:2000]}")


def check_errors(path, expected, code, stderr):
    """Exactly the injected errors, each at its line, column and key path."""
    if code != 2:
        sys.exit(f"{path}: expected exit 2 (an invalid config), got {code}:\n{stderr[:2000]}")
    lines = [l for l in stderr.splitlines() if l.startswith(path + ":")]
    found = set()
    for l in lines:
        place = l[len(path) + 1:].split(": ", 2)
        if len(place) >= 2:
            line, col = place[0].split(":")
            found.add((int(line), int(col), place[1]))
    want = set(expected)
    missing, extra = want - found, len(lines) - len(want)
    if missing or extra:
        sys.exit(f"{path}: {len(missing)} expected errors missing (e.g. {sorted(missing)[:3]}), "
                 f"{len(lines)} error lines for {len(want)} errors:\n" + "\n".join(lines[:10]))


def measure(procman, n, errors):
    d = os.path.join(ROOT, f"{n}{'-errors' if errors else ''}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    text, expected = config(n, errors, d)
    path = os.path.join(d, "procman.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    times, cpu, rss = [], [], []
    for _ in range(RUNS):
        took, used, maxrss, code, stdout, stderr = run_once(procman, path)
        if errors:
            check_errors(path, expected, code, stderr)
        else:
            check_valid(n, path, code, stdout, stderr)
        times.append(took)
        cpu.append(used)
        rss.append(maxrss)
    return {"n": n, "errors": len(expected), "bytes": len(text.encode()),
            "times_s": times, "cpu_s": cpu, "max_rss_kib": rss}


def fmt_ms(s):
    return f"{s * 1000:.1f} ms" if s < 10 else f"{s:.2f} s"


def table(title, rows):
    print(f"\n### {title}\n")
    print("| processes | errors | file | wall, median (min–max) | CPU, median | max RSS | "
          "µs/process | KiB/process | added µs/process | added KiB/process |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    before = None
    for r in rows:
        t = statistics.median(r["times_s"])
        m = max(r["max_rss_kib"])
        n = r["n"]
        if before:
            dn = n - before[0]
            added = f"{(t - before[1]) / dn * 1e6:.1f} | {(m - before[2]) / dn:.2f}"
        else:
            added = "– | –"
        print(f"| {n:,} | {r['errors']} | {r['bytes'] / 2**20:.1f} MiB | {fmt_ms(t)} "
              f"({fmt_ms(min(r['times_s']))}–{fmt_ms(max(r['times_s']))}) | "
              f"{fmt_ms(statistics.median(r['cpu_s']))} | {m / 1024:.1f} MiB | {t / n * 1e6:.1f} | {m / n:.2f} | {added} |")
        before = (n, t, m)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    procman = os.path.abspath(sys.argv[1])
    os.makedirs(ROOT, exist_ok=True)
    valid = [measure(procman, n, False) for n in NS]
    table(f"`procman validate`, valid configs ({RUNS} runs each)", valid)
    wrong = []
    if ERRORS:
        wrong = [measure(procman, n, True) for n in NS]
        table(f"`procman validate`, one error per 1,000 processes ({RUNS} runs each; "
              "every error listed at its line, column and key path)", wrong)
    if os.environ.get("KEEP") != "1":
        shutil.rmtree(ROOT, ignore_errors=True)
    print(json.dumps({"valid": valid, "errors": wrong}))


if __name__ == "__main__":
    main()
