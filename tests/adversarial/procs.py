"""Servers under attack in processes of their own, and what can be measured of them.

A server in its own process (``serve.py``) keeps the attack and its measure apart: its
resident memory, read from ``/proc``, is its own, and its deadlines can be lowered
without touching the test's process.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..helpers import DEADLINE, cli_env, read_until

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def run_async(seconds: float, coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to completion, failing the test after ``seconds``."""

    async def bounded() -> None:
        async with asyncio.timeout(seconds):
            await coro

    asyncio.run(bounded())


# The floods and trickles here come from one address (127.0.0.1, as the probes do) and test
# the global connection limit and the deadlines; the per-address caps would refuse them
# first, so they are lifted to this. The caps are tested in tests/net/test_runtime.py.
SAME_SOURCE = 1_000_000


@contextmanager
def server_process(kind: str, tmp: Path, *, idle: float | None = None,
                   head: float | None = None, stall: float | None = None,
                   big: int | None = None, remote: int | None = None,
                   limit: int | None = None, per_source: int | None = SAME_SOURCE,
                   records: int | None = None) -> Iterator[tuple[int, int]]:
    """``kind`` in a process of its own (options: see ``serve.py``); yields (pid, port).
    Its log goes to ``tmp/KIND.log``. ``per_source`` (None: the server's own caps) lifts
    the per-address caps for attacks that test the global limit and the deadlines from
    one address."""
    args = [sys.executable, "-m", "tests.adversarial.serve", kind, str(tmp)]
    for option, value in (("--idle", idle), ("--head", head), ("--stall", stall),
                          ("--big", big), ("--remote", remote), ("--max-connections", limit),
                          ("--per-source", per_source), ("--records", records)):
        if value is not None:
            args += [option, str(value)]
    with open(tmp / f"{kind}.log", "w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                                stderr=log, text=True)
    try:
        assert proc.stdout is not None
        m = re.search(r"port (\d+)", read_until(proc.stdout, "port "))
        assert m is not None
        yield proc.pid, int(m.group(1))
        assert proc.poll() is None, "the server died"
    finally:
        proc.terminate()
        proc.wait(timeout=DEADLINE)


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (its peak so far) of process ``pid``, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v) * 1024 for k, v in re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", status)}


def descriptors(pid: int) -> int:
    """Open file descriptors of process ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def grown(pid: int, before: dict[str, int]) -> int:
    """Bytes by which the peak resident memory of ``pid`` rose above ``before``'s."""
    return memory(pid)["VmHWM"] - before["VmRSS"]


def mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"
