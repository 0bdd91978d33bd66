# Sourced by the benches' scripts (run.sh, guard.sh, logs.sh):
#   need_tools SCRIPT             python3, cargo and a C compiler on PATH, or exit 2
#   build_procman SCRIPT RESULTS  cargo build --release -p procman (unless
#                                 SKIP_BUILD=1), a copy in RESULTS/procman.bin,
#                                 exported as PROCMAN
#   raise_limits N                room for N processes (below)
#   in_child CMD...               runs CMD as a child this script waits for,
#                                 so that a signal reaches it (below)
# Each expects $root (the repository) and $harness (benches/harness).

# A TERM, HUP or INT to the script (a CI's cancel, `timeout`, Ctrl-C) is
# passed on to the harness it runs, whose handler stops the manager and the
# children it started; the script then exits 143. Bash runs a trap only
# between commands, so the harness runs in the background and is waited
# for: `wait` returns at the signal. Without this a TERM to the script
# alone left the harness measuring, and one to the whole group left the
# manager and its children (their own session) running.
child_pid=
stop_child() {
  trap '' TERM HUP INT
  if [ -n "$child_pid" ]; then
    kill -TERM "$child_pid" 2>/dev/null || true
    wait "$child_pid" 2>/dev/null || true
  fi
  exit 143
}
trap stop_child TERM HUP INT

in_child() {
  "$@" </dev/null &
  child_pid=$!
  local rc=0
  wait "$child_pid" || rc=$?
  child_pid=
  return "$rc"
}

need_tools() {
  local tool
  for tool in python3 cargo "${CC:-cc}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$1: '$tool' is needed and not on PATH" >&2
      exit 2
    fi
  done
}

build_procman() {
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "== cargo build --release -p procman" >&2
    (cd "$root" && cargo build --release -p procman)
  fi
  local bin=$root/target/release/procman
  [ -x "$bin" ] || { echo "$1: $bin was not built" >&2; exit 2; }
  # Measure a private copy, so that a rebuild of target/ during the run
  # (another build, an IDE) cannot swap the binary between measurements.
  cp "$bin" "$2/procman.bin"
  export PROCMAN=$2/procman.bin
}

# `raise_limits N` makes room for a manager
# with N children (and a restart or two of each) in this shell and the
# processes it starts, and says on stderr what it raised. As root it raises:
#   - RLIMIT_NOFILE, soft and hard (`ulimit -n`), to 6 N + 4096: procman holds
#     4 descriptors per process in the raw log format (two pipe read ends,
#     the log file, the pidfd), 6 in the default format (two spool files),
#     2 more with a memory limit on cgroup v1, plus room;
#   - RLIMIT_NPROC (`ulimit -u`) to 2 N + 4096 over the tasks already running;
#   - kernel.pid_max and kernel.threads-max, when fewer than the tasks already
#     running plus 2 N + 4096 would be left;
#   - fs.file-max, when below 8 N + 65536.
# Without root (or without CAP_SYS_RESOURCE, for a hard limit) it raises the
# soft limits to the hard ones and warns about anything still too low. A pids.max of the cgroup is reported, never changed.
# Only a shell's own limits and those three sysctls change (and stay so:
# they are not put back); nothing else.

raise_limits() {
  local n=$1 root=0 need cur hard tasks
  [ "$(id -u)" = 0 ] && root=1
  say() { echo "limits: $*" >&2; }

  need=$((6 * n + 4096))
  cur=$(ulimit -Sn) hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    if [ $root = 1 ] && ulimit -n "$need" 2>/dev/null; then
      say "raised RLIMIT_NOFILE $cur/$hard -> $need/$need (open files, for N=$n)"
    else
      ulimit -Sn "$hard" 2>/dev/null
      say "WARNING: RLIMIT_NOFILE hard limit $hard < $need wanted for N=$n; raising it needs root with CAP_SYS_RESOURCE"
    fi
  elif [ "$cur" != unlimited ] && [ "$cur" -lt "$need" ]; then
    ulimit -Sn "$need" && say "raised RLIMIT_NOFILE soft $cur -> $need (hard $hard)"
  fi

  tasks=$(ls /proc | grep -c '^[0-9]') || tasks=0
  tasks=$((tasks + $(awk '{print $4}' /proc/loadavg | cut -d/ -f2)))
  need=$((tasks + 2 * n + 4096))
  cur=$(ulimit -Su) hard=$(ulimit -Hu)
  if [ "$cur" != unlimited ] && [ "$cur" -lt "$need" ]; then
    if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then
      ulimit -Su "$need" && say "raised RLIMIT_NPROC soft $cur -> $need"
    elif [ $root = 1 ] && ulimit -u "$need" 2>/dev/null; then
      say "raised RLIMIT_NPROC $cur/$hard -> $need/$need (processes, for N=$n)"
    else
      say "WARNING: RLIMIT_NPROC $cur < $need wanted for N=$n; raising it needs root with CAP_SYS_RESOURCE"
    fi
  fi

  local key file
  for key in kernel/pid_max kernel/threads-max; do
    file=/proc/sys/$key
    [ -r "$file" ] || continue
    cur=$(cat "$file")
    if [ "$cur" -lt "$need" ]; then
      if [ $root = 1 ] && echo "$need" > "$file" 2>/dev/null; then
        say "raised ${key/\//.} $cur -> $need ($tasks tasks running, for N=$n)"
      else
        say "WARNING: ${key/\//.} = $cur < $need needed for N=$n"
      fi
    fi
  done

  need=$((8 * n + 65536))
  cur=$(cut -f1 /proc/sys/fs/file-max 2>/dev/null || echo "$need")
  if [ "$cur" -lt "$need" ]; then
    if [ $root = 1 ] && echo "$need" > /proc/sys/fs/file-max 2>/dev/null; then
      say "raised fs.file-max $cur -> $need"
    else
      say "WARNING: fs.file-max = $cur < $need needed for N=$n"
    fi
  fi

  local rel max
  rel=$(awk -F: '$2 == "pids" || ($1 == "0" && $2 == "") {print $3; exit}' /proc/self/cgroup)
  for file in /sys/fs/cgroup/pids"$rel"/pids.max /sys/fs/cgroup"$rel"/pids.max; do
    [ -r "$file" ] || continue
    max=$(cat "$file")
    if [ "$max" != max ] && [ "$max" -lt $((tasks + 2 * n)) ]; then
      say "WARNING: $file = $max: too few for N=$n (not changed)"
    fi
    break
  done
}
