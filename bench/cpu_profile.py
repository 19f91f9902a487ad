#!/usr/bin/env python3
"""Where a swarm process's CPU goes, by category: profile with a CPU clock, then sum.

Two uses:

    bench/swarm --loopback --systems p2pshare --leeches 8 --runs 1 \\
        --p2pshare-cmd "python3 bench/cpu_profile.py run DIR"   # wraps every p2pshare
    python3 bench/cpu_profile.py report DIR/*.prof              # the breakdown
    python3 bench/cpu_profile.py report SPYDIR/*.txt            # same, of py-spy samples

Strategy: ``run`` starts ``python -m p2pshare ARGS`` in this process under cProfile with
``time.thread_time`` as its clock, so that each function is charged the main thread's CPU
time, not wall time (time spent blocked in the kernel, or runnable behind the machine's
other processes, is not charged). Only the seed (``share``) and the leech whose ``--out``
folder is ``l1`` are profiled; every other process runs unprofiled. The stats go to
``DIR/ROLE.prof`` when the command ends (it ends cleanly on SIGTERM), with the process's
whole CPU time beside them, so that the report can show the CPU of its other threads
(final whole-file check, flush, resume records) that the profile does not see.
cProfile's own cost per Python call inflates call-heavy code against C work (hashing,
copies): read the categories of the report as an upper bound for per-call overhead; a
sampling profile (``bench/swarm --profile``) has the opposite bias.

``report`` charges each function's own time (not its callees') to the first category whose
pattern matches the function's file and name (``CATEGORIES``, in order); a builtin that
matches none (``len``, ``isinstance``, ...) is charged to its callers' categories. For py-spy's
collapsed stacks (``.txt``, from ``bench/swarm --profile``) it charges each sample to its
innermost frame the same way; samples in an idle wait (``WAITING``: a worker thread waiting
for work, the loop in ``epoll_wait``) are counted apart, since py-spy counts a thread as
busy there and whenever it is runnable or blocked in the kernel.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import runpy
import sys
import time
from pathlib import Path

# (category, pattern on "file:line(function)" as pstats names functions), first match wins.
CATEGORIES: list[tuple[str, str]] = [
    ("hashing", r"openssl_sha|_hashlib|sha256_matches|hash_file|digest"),
    ("writes (pwrite, fsync)", r"posix\.pwrite|PieceFile\.write|\(write\)$|storage\.py.*\(write\)|"
                               r"fsync|publish|files\.py"),
    ("sending (sendfile, socket writes)", r"sendfile|\bsend\b|'send'|[Tt]ransport.*write|"
                                          r"_ensure_fd_no_transport|_write_ready"),
    ("receive path (recv, copies into buffers)", r"recv|feed_data|_read_ready|streams\.py|"
                                                 r"_buffer\.py|\(_receive\)|setsockopt"),
    ("per-message protocol and serving", r"p2pshare/protocol|p2pshare/net/|seeder\.py|"
                                         r"link\.py|manifest\.py|tracker\.py|client\.py"),
    ("scheduling (picker, roster, download loop)", r"picker\.py|roster\.py|fetch\.py|"
                                                   r"pieces\.py|ledger\.py|census\.py"),
    ("event loop (wake-ups, tasks, timers)", r"asyncio/|selectors\.py|epoll|"
                                             r"_contextvars|Event|Future"),
    ("start-up (imports, parsing options)", r"importlib|<frozen|dataclasses|argparse|"
                                            r"_compile|sre_|enum\.py|typing\.py|marshal"),
]


WAITING = r"futures/thread\.py:8[01]\(|selectors\.py:468\(|threading\.py:\d+\(.*wait\)"


def category(label: str) -> str:
    return next((name for name, pattern in CATEGORIES if re.search(pattern, label)), "other")


def role(args: list[str]) -> str | None:
    """Which process ``p2pshare ARGS`` is: "seed", "l1", or None (not profiled)."""
    if "share" in args:
        return "seed"
    if "fetch" in args and "--out" in args and Path(args[args.index("--out") + 1]).name == "l1":
        return "l1"
    return None


def run(outdir: Path, module_args: list[str]) -> None:
    if module_args[:2] != ["-m", "p2pshare"]:
        raise SystemExit("usage: cpu_profile.py run DIR -m p2pshare ARGS...")
    args = module_args[2:]
    sys.argv = ["p2pshare", *args]
    name = role(args)
    if name is None:
        runpy.run_module("p2pshare", run_name="__main__", alter_sys=True)
        return
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        runpy.run_module("p2pshare", run_name="__main__", alter_sys=True)
    finally:
        profiler.disable()
        outdir.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(outdir / f"{name}.prof"))
        times = os.times()
        (outdir / f"{name}.json").write_text(json.dumps(
            {"process_cpu": times.user + times.system, "main_thread_cpu": time.thread_time()}))


def categorise(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per category (``CATEGORIES``; the rest under "other")."""
    totals: dict[str, float] = {}
    for (file, line, func), entry in stats.stats.items():  # type: ignore[attr-defined]
        name = category(f"{file}:{line}({func})")
        if name == "other" and file == "~":  # a builtin (len, isinstance, ...): its callers'
            for (cfile, cline, cfunc), calls in entry[4].items():
                caller = category(f"{cfile}:{cline}({cfunc})")
                totals[caller] = totals.get(caller, 0.0) + calls[2]
            continue
        totals[name] = totals.get(name, 0.0) + entry[2]  # tottime
    return totals


def spy_leaf(line: str) -> tuple[str, int]:
    """(innermost frame as "file:line(function)", samples) of a collapsed-stack line."""
    stack, _, count = line.rstrip().rpartition(" ")
    leaf = stack.rsplit(";", 1)[-1].strip()
    m = re.match(r"(.*) \((.*)\)$", leaf)
    return (f"{m.group(2)}({m.group(1)})" if m else leaf), int(count)


def spy_report(path: Path) -> None:
    totals: dict[str, int] = {}
    waiting = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        label, count = spy_leaf(line)
        if re.search(WAITING, label):
            waiting += count
        else:
            name = category(label)
            totals[name] = totals.get(name, 0) + count
    busy = sum(totals.values())
    print(f"== {path.stem}: {busy} busy samples ({waiting} more in idle waits, left out)")
    for name, count in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:45s} {count:7d}  {count / max(busy, 1):6.1%}")


def report(paths: list[Path]) -> None:
    for path in paths:
        if path.suffix == ".txt":
            spy_report(path)
            continue
        stats = pstats.Stats(str(path))
        totals = categorise(stats)
        whole = sum(totals.values())
        extra = path.with_suffix(".json")
        cpu = json.loads(extra.read_text()) if extra.exists() else {}
        print(f"== {path.stem}: main thread {whole:.2f} s of CPU in the profile"
              + (f"; process {cpu['process_cpu']:.2f} s, of which other threads "
                 f"{cpu['process_cpu'] - cpu['main_thread_cpu']:.2f} s" if cpu else ""))
        for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f"  {name:45s} {seconds:7.2f} s  {seconds / whole:6.1%}")
        print("  top functions by own time:")
        stats.sort_stats("tottime").print_stats(12)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "run":
        run(Path(argv[1]), argv[2:])
        return 0
    if len(argv) >= 2 and argv[0] == "report":
        report([Path(p) for p in argv[1:]])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
