"""Shared test helpers: waiting for conditions with a deadline, and running the CLI.

No test sleeps to synchronise: it waits for a condition, polling, with a deadline, and
fails with a clear message if the deadline passes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

DEADLINE = 20.0  # seconds any single wait may take before the test fails
POLL = 0.01


def wait_for(condition: Callable[[], Any], timeout: float = DEADLINE, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; return that value."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(POLL)


async def async_wait_for(condition: Callable[[], Any], timeout: float = DEADLINE,
                         what: str = "") -> Any:
    """``wait_for`` inside an event loop (yields to the loop between polls)."""
    try:
        async with asyncio.timeout(timeout):
            while not (value := condition()):
                await asyncio.sleep(POLL)
            return value
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("COLUMNS", None)
    return env


def run_cli(args: Sequence[str], *, input: str | None = None, timeout: float = 60,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m p2pshare ARGS`` to completion."""
    return subprocess.run([sys.executable, "-m", "p2pshare", *args], input=input,
                          capture_output=True, text=True, timeout=timeout, env=cli_env(),
                          cwd=cwd)


def spawn_cli(args: Sequence[str], *, stdin: int | None = subprocess.DEVNULL,
              cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``python -m p2pshare ARGS`` in the background (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "p2pshare", *args], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=cli_env(), cwd=cwd)


def read_until(stream: IO[str], needle: str, timeout: float = DEADLINE) -> str:
    """Read lines from a child's output until one contains ``needle``; return all read."""
    import selectors

    seen: list[str] = []
    end = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    while time.monotonic() < end:
        if not sel.select(timeout=max(0.0, end - time.monotonic())):
            break
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} not seen within {timeout} s; got:\n{''.join(seen)}")
