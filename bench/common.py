"""Shared pieces of the benchmarks: timing, medians, child processes, result tables.

Every benchmark measures its reference in the same run as p2pshare and prints the ratio,
because absolute figures drift between runs and machines.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(width=max(120, Console().width))  # tables unwrapped in logs and pipes
MB = 1_000_000


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port (deadline, no fixed sleep)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def child(args: Sequence[str], **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    """A child process that is terminated (then killed) when the block ends."""
    proc = subprocess.Popen(list(args), **kwargs)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def compile_package(python: Sequence[str] = (sys.executable,),
                    env: dict[str, str] | None = None) -> str:
    """Byte-compile the p2pshare package that ``python`` imports (with ``env``), as an
    installation from a wheel is, and return its folder. Without it a process run under
    ``PYTHONDONTWRITEBYTECODE=1``, or from a tree not yet imported, compiles every module
    from source at each start: about 0.08 s of CPU a process on the 2-core machine of
    bench/README.md, which a benchmark of short processes would charge to p2pshare."""
    code = ("import compileall, os, p2pshare; d = os.path.dirname(p2pshare.__file__); "
            "compileall.compile_dir(d, quiet=1); print(d)")
    done = subprocess.run([*python, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip()


def p2pshare_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "p2pshare", "-q", *args]


def build_c(source: Path, tmp: Path) -> Path:
    """Compile one C file of bench/ with the system compiler into ``tmp``; the executable."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit(f"a C compiler is needed to build {source.name}")
    exe = tmp / source.stem
    subprocess.run([cc, "-O2", "-o", str(exe), str(source)], check=True)
    return exe


def load_average() -> float:
    """The 1-minute load average (the machine is shared: print it beside the figures)."""
    return os.getloadavg()[0]


def cpu_ticks() -> tuple[int, int]:
    """(all CPU time, of it stolen by the hypervisor) in ticks since boot, from /proc/stat
    ((0, 0) where there is none). On a virtual machine whose host is busy, the guest's
    CPUs wait while runnable: a figure measured meanwhile measures the host's load too."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields), fields[7] if len(fields) > 7 else 0


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of CPU time the host stole between two ``cpu_ticks``."""
    total = after[0] - before[0]
    return (after[1] - before[1]) / total if total > 0 else 0.0


def make_file(path: Path, size: int) -> Path:
    """A file of ``size`` pseudo-random bytes (reused if it already has that size)."""
    if path.exists() and path.stat().st_size == size:
        return path
    block = os.urandom(4 * 1024 * 1024)
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(left, len(block))
            out.write(block[:n])
            left -= n
    return path


def result_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


def chosen_loop(fast_loop: bool = True,
                who: str = "bench") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """p2pshare's event loop factory (``net.loops.loop_factory``); a bad
    ``P2PSHARE_LOOP`` ends the script with one line, as it ends a command."""
    from p2pshare.errors import ConfigError
    from p2pshare.net.loops import loop_factory

    try:
        return loop_factory(fast_loop)
    except ConfigError as exc:
        raise SystemExit(f"{who}: {exc}") from None


def machine() -> str:
    """The machine, and the event loops p2pshare's processes run on."""
    from p2pshare.host import machine as describe

    loops = {"index and registration servers, swarm peers": chosen_loop(True),
             "P2P-CI/DI peers": chosen_loop(False)}
    used = ", ".join(f"{who} {'asyncio' if f is None else 'uvloop'}" for who, f in loops.items())
    return f"{describe()}; event loops: {used} (P2PSHARE_LOOP=asyncio|uvloop overrides)"
