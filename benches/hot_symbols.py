#!/usr/bin/env python3
"""The functions a running manager touches: makes crates/procman/hot-symbols.txt.

The kernel maps a binary's code 64 KiB at a time around each page touched
(fault-around), from what the page cache holds. To see which pages the
manager really touches, this copies the binary onto a scratch ext4 file
system on a loop device with readahead off, drops the copy from the page
cache, and runs `procman run` on N `sleep` processes (the harness's
config, as benches/memory.py) from it: a page is then only in the cache,
and only mapped, once the manager touched it. Once all run, it kills
RESTARTS (5) of them with SIGKILL, waits for their restarts, asks the API
for the processes, the manager and the metrics on its Unix socket, and
after SETTLE_S seconds reads which pages of the binary the manager maps
(/proc/PID/pagemap), once before the API requests and once after. It
writes the names of the functions and constants on those pages, in address
order, those of the manager before it was asked first, then those the
requests added: the list the linker places first (see
crates/procman/build.rs). A manager nobody asks never maps the second part.

    benches/hot_symbols.py PROCMAN [--also OTHER_BUILD]... [--n 500] [--runs 3] [--out crates/procman/hot-symbols.txt]

A page holds several functions, and one touched makes all of them listed;
a list made from the release build itself only grows. The list is made
from a build of the same code with every function on a page of its own
(the same symbols, the numbered local ones included; 85 MB of code), as the
last step of a change to the code, since those numbers change with it:

    cargo rustc --release -p procman --bin procman -- -C llvm-args=-align-all-functions=12
    cp target/release/procman /tmp/aligned
    benches/hot_symbols.py /tmp/aligned
    cargo build --release -p procman

With `--also` (builds of the same code laid out otherwise), a symbol is
kept only if it is on a touched page in every build that has it.

Root (losetup, mount, /proc/PID/pagemap's frame numbers), Linux, `nm` and
`readelf` from binutils, standard library. Knobs: SETTLE_S (3),
START_TIMEOUT_S (120), RESTARTS (5). Prints how many pages were touched and
how many symbols and bytes the list holds.
"""
import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory  # noqa: E402

SETTLE_S = float(os.environ.get("SETTLE_S", "3"))
START_TIMEOUT_S = float(os.environ.get("START_TIMEOUT_S", "120"))
RESTARTS = int(os.environ.get("RESTARTS", "5"))
PAGE = 4096


def scratch_fs(top):
    """A 200 MiB ext4 on a loop device with readahead off, mounted in `top`."""
    image, mnt = f"{top}/fs.img", f"{top}/mnt"
    with open(image, "wb") as f:
        f.truncate(200 << 20)
    subprocess.run(["mkfs.ext4", "-q", image], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", image], check=True, capture_output=True, text=True).stdout.strip()
    os.makedirs(mnt)
    subprocess.run(["mount", loop, mnt], check=True)
    with open(f"/sys/block/{os.path.basename(loop)}/queue/read_ahead_kb", "w") as f:
        f.write("0")
    return loop, mnt


def touched_pages(pid, exe):
    """Virtual page numbers (as linked) of the binary's pages mapped in `pid`."""
    segments = []
    for line in subprocess.run(["readelf", "-lW", exe], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segments.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    pages = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            f = line.split()
            if len(f) < 6 or f[5] != exe:
                continue
            start, end = (int(x, 16) for x in f[0].split("-"))
            offset, count = int(f[2], 16), (end - start) // PAGE
            pagemap.seek(start // PAGE * 8)
            for i, entry in enumerate(struct.unpack(f"{count}Q", pagemap.read(count * 8))):
                if entry >> 63 & 1:
                    at = offset + i * PAGE
                    for file_off, vaddr, size in segments:
                        if file_off <= at < file_off + size:
                            pages.add((vaddr + at - file_off) // PAGE)
    return pages


def symbols(exe):
    """(address, size, name) of the functions and constants of `exe`, in address order."""
    syms = []
    for line in subprocess.run(["nm", "-S", "--defined-only", exe], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTrR" and int(f[1], 16) > 0:
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    return sorted(syms)


def on_pages(syms, pages):
    """{name: size} of the symbols that overlap `pages`."""
    return {
        name: length
        for addr, length, name in syms
        if any(p in pages for p in range(addr // PAGE, (addr + length - 1) // PAGE + 1))
    }


def request(sock, path, method="GET"):
    """`method path` on the manager's Unix socket; the status line."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(sock)
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: procman\r\nContent-Length: 0\r\n"
                  f"Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def wait_running(mgr, n, end):
    """Until all `n` processes run under `mgr`; exits at `end`."""
    while memory.running_sleeps(mgr.pid) < n:
        if time.monotonic() > end or mgr.poll() is not None:
            raise SystemExit(f"{memory.running_sleeps(mgr.pid)} of {n} running")
        time.sleep(0.1)


def run(binary, n, top):
    work = f"{top}/work"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cfg = memory.write_config(work, n)
    log = open(f"{work}/manager.log", "wb")
    mgr = subprocess.Popen([binary, "run", "-c", cfg], stdout=log, stderr=log)
    try:
        end = time.monotonic() + START_TIMEOUT_S
        wait_running(mgr, n, end)
        # What a manager also does while it runs: restart processes that
        # died, and answer the API.
        for pid in memory.sleep_pids(mgr.pid)[:RESTARTS]:
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        wait_running(mgr, n, end)
        time.sleep(SETTLE_S)
        running = touched_pages(mgr.pid, binary)
        for path in ("/api/v1/processes", "/api/v1/manager", "/metrics"):
            request(f"{work}/state/procman.sock", path)
        time.sleep(SETTLE_S)
        return running, touched_pages(mgr.pid, binary)
    finally:
        memory.stop(mgr)
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("procman")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3, help="runs per build, whose pages are pooled")
    ap.add_argument("--also", action="append", default=[], metavar="PROCMAN",
                    help="another build (another layout): keep only what is touched in each build that has it")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "crates", "procman", "hot-symbols.txt"))
    a = ap.parse_args()
    memory.raise_nofile(a.n)
    top = tempfile.mkdtemp(prefix="procman-hot-")
    loop = None
    try:
        loop, mnt = scratch_fs(top)
        touched = []
        for i, build in enumerate([a.procman] + a.also):
            binary = f"{mnt}/procman{i}"
            shutil.copyfile(build, binary)
            os.chmod(binary, 0o755)
            # What one run touches varies a little (which thread blocks
            # first, when a lazy table is made): the union of a few runs.
            # Each starts with the copy out of the page cache: pages an
            # earlier run read (its shutdown's code) would otherwise be
            # mapped by fault-around as if this run had touched them.
            running, asked = set(), set()
            for _ in range(a.runs):
                fd = os.open(binary, os.O_RDONLY)
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)
                r, q = run(binary, a.n, top)
                running |= r
                asked |= q
            syms = symbols(binary)
            touched.append((syms, on_pages(syms, running), on_pages(syms, asked)))
            print(f"{build}: {len(running)} pages touched running, {len(asked)} once asked "
                  f"({len(running) * 4} and {len(asked) * 4} KiB)")
    finally:
        if loop:
            subprocess.run(["umount", f"{top}/mnt"], check=False)
            subprocess.run(["losetup", "-d", loop], check=False)
        shutil.rmtree(top, ignore_errors=True)
    # In the first build's order; a symbol another build also has must be
    # on a touched page there too (a function that only shared a page with
    # touched code in one layout is dropped).
    # The code of a manager nobody asks comes first, then what the API adds:
    # a manager never asked maps none of the API's blocks.
    first, running, asked = touched[0]
    others = [({n for _, _, n in syms}, h) for syms, _, h in touched[1:]]

    def kept(name):
        return all(name in h or name not in has for has, h in others)

    names = [name for _, _, name in first if name in running and kept(name)]
    names += [name for _, _, name in first if name in asked and name not in running and kept(name)]
    names = list(dict.fromkeys(names))
    size = sum(asked[name] for name in names)
    with open(a.out, "w") as f:
        f.write("".join(f"{name}\n" for name in names))
    print(f"{len(names)} symbols, {size // 1024} KiB, in {a.out}")


if __name__ == "__main__":
    sys.exit(main())
