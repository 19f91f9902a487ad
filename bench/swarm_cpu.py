#!/usr/bin/env python3
"""CPU per GB delivered by a loopback swarm: one index server, one seed, N leeches.

Strategy: every process is a real ``p2pshare`` command on 127.0.0.1 with no rate limit,
so the CPU bounds the run (``bench/swarm --loopback`` is the full benchmark with other
contenders; this one is a quick before/after check of p2pshare alone). The server's and
the seed's CPU (user + sys, from ``/proc/<pid>/stat``) is read when the leeches start and
when the last one ends; each leech's comes from ``os.wait4``, and so does the time the
first one ended (each leech exits once its copy is complete under its name). CPU per GB is the sum
divided by the bytes delivered (N x the file size). Prints one line per run, with the
load average at its start. Runs alternate between the trees given with ``--tree``
(``PYTHONPATH`` of each run), so that a before and an after see the same machine.

    python3 bench/swarm_cpu.py --size-mib 256 --leeches 1 4 --runs 3 --tree OLD --tree NEW
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + sys seconds of a live process (its reaped children included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def wait_line(proc: subprocess.Popen[str], pattern: str, deadline: float, err: bool) -> str:
    """The first match of ``pattern`` in the process's stderr (or stdout) lines."""
    stream = proc.stderr if err else proc.stdout
    assert stream is not None
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    raise SystemExit(f"no line matching {pattern!r}")


def one_run(tree: str, data: Path, leeches: int, work: Path) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, CPU seconds per process) of one swarm run."""
    env = {**os.environ, "PYTHONPATH": tree}
    # Isolated from the current folder: ``-m`` puts it first on sys.path, ahead of
    # PYTHONPATH, so run from a source tree every run would import that tree.
    cmd = [sys.executable, "-P", "-m", "p2pshare"]
    deadline = time.monotonic() + 300
    server = subprocess.Popen([*cmd, "server", "--listen", "127.0.0.1", "--port", "0"],
                              env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              text=True)
    seed = None
    try:
        port = wait_line(server, r"listening on 127\.0\.0\.1:(\d+)", deadline, True)
        where = f"127.0.0.1:{port}"
        seed = subprocess.Popen([*cmd, "-q", "share", str(data), "--server", where,
                                 "--listen", "127.0.0.1"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        swarm = wait_line(seed, r"^([0-9a-f]{64}) ", deadline, False)
        before = [proc_cpu(server.pid), proc_cpu(seed.pid)]
        start = time.monotonic()
        fetches = [subprocess.Popen([*cmd, "-q", "fetch", swarm, "--server", where,
                                     "--out", str(work / f"l{i}"), "--listen", "127.0.0.1"],
                                    env=env, stdout=subprocess.DEVNULL)
                   for i in range(leeches)]
        each: list[float] = []
        done: list[float] = []  # seconds from the start to each leech's end, in order
        running = {proc.pid for proc in fetches}
        while running:
            pid, status, usage = os.wait4(-1, 0)  # the server and seed run until stopped
            running.discard(pid)
            done.append(time.monotonic() - start)
            if os.waitstatus_to_exitcode(status):
                raise SystemExit(f"fetch failed: {os.waitstatus_to_exitcode(status)}")
            each.append(usage.ru_utime + usage.ru_stime)
        wall = done[-1]
        each = [proc_cpu(server.pid) - before[0], proc_cpu(seed.pid) - before[1], *each]
        for i in range(leeches):
            copy = work / f"l{i}" / data.name
            if copy.stat().st_size != data.stat().st_size:
                raise SystemExit(f"{copy}: wrong size")
            copy.unlink()
        return sum(each), wall, "first done {:.2f}s; CPU s: server {:.2f} seed {:.2f} " \
            "leeches {}".format(done[0], each[0], each[1], " ".join(f"{c:.2f}" for c in each[2:]))
    finally:
        for proc in (seed, server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--leeches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", action="append", required=True,
                        help="a source tree to run (PYTHONPATH); give several to compare")
    args = parser.parse_args()
    for tree in args.tree:  # each tree byte-compiled, as installed (common.compile_package)
        compile_package([sys.executable, "-P"], {**os.environ, "PYTHONPATH": tree})
    with tempfile.TemporaryDirectory(prefix="swarm-cpu-") as tmp:
        work = Path(tmp)
        data = work / "data.bin"
        with data.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        gb = args.size_mib / 1024
        for run in range(args.runs):
            for n in args.leeches:
                trees = args.tree if run % 2 == 0 else args.tree[::-1]
                for tree in trees:
                    load = Path("/proc/loadavg").read_text().split()[0]
                    cpu, wall, each = one_run(tree, data, n, work)
                    print(f"tree={tree} N={n} run={run} wall={wall:.2f}s cpu={cpu:.2f}s "
                          f"cpu/GB={cpu / (n * gb):.2f} load1={load} ({each})", flush=True)


if __name__ == "__main__":
    main()
