"""Shared test helpers: waiting for conditions with a deadline, and running the CLI.

No test sleeps to synchronise: it waits for a condition, polling, with a deadline, and
fails with a clear message if the deadline passes.
"""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from hypothesis import strategies as st

DEADLINE = 20.0  # seconds any single wait may take before the test fails
POLL = 0.01


def has_ipv6_loopback() -> bool:
    """Whether this machine can bind ``::1`` (tests over IPv6 are skipped without it)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6_LOOPBACK = has_ipv6_loopback()

SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47)  # Linux's value


def pace(sock: Any, rate: int) -> None:
    """``sock`` sends at most ``rate`` bytes a second, paced by the kernel: the network,
    not the receiver, holds its sending back (as a full uplink would)."""
    sock.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, rate)


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

    async def check() -> Any:
        return condition()

    return await async_retry(check, timeout, what or str(condition))


async def async_retry(attempt: Callable[[], Awaitable[Any]], timeout: float = DEADLINE,
                      what: str = "", pause: float = POLL) -> Any:
    """Await ``attempt()`` until it returns something truthy; return that value. For a
    condition that needs a round trip to a server to check (``async_wait_for`` for one
    that can be read directly); ``pause`` is a client's retry pace. The deadline is also
    checked between attempts, so an attempt that swallows its cancellation (a client
    library's bug) cannot make the wait endless."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    failed = AssertionError(f"timed out after {timeout} s waiting for {what or attempt}")
    while (left := end - loop.time()) > 0:
        try:
            async with asyncio.timeout(left):
                value = await attempt()
        except TimeoutError:
            raise failed from None
        if value:
            return value
        await asyncio.sleep(min(pause, max(0.0, end - loop.time())))
    raise failed


# Where a CLI child looks for its configuration file: a folder that does not exist, so no
# test reads the configuration of the user running the tests (a test sets its own).
NO_CONFIG_HOME = str(Path(tempfile.gettempdir()) / "p2pshare-tests-no-config")


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI child: ours without the variables of p2pshare's settings
    (docs/cli.md#configuration), no configuration file, then ``extra``."""
    from p2pshare.cli.config import SETTINGS

    settings = {"P2PSHARE_CONFIG", *(s.env for s in SETTINGS)}
    env = {k: v for k, v in os.environ.items() if k not in settings}
    env["PYTHONUNBUFFERED"] = "1"
    env["XDG_CONFIG_HOME"] = NO_CONFIG_HOME
    env.pop("COLUMNS", None)
    env.update(extra or {})
    return env


def run_cli(args: Sequence[str], *, input: str | None = None, timeout: float = 60,
            cwd: Path | None = None, env: Mapping[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run ``python -m p2pshare ARGS`` to completion (``env``: variables to add)."""
    return subprocess.run([sys.executable, "-m", "p2pshare", *args], input=input,
                          capture_output=True, text=True, timeout=timeout, env=cli_env(env),
                          cwd=cwd)


def spawn_cli(args: Sequence[str], *, stdin: int | None = subprocess.DEVNULL,
              cwd: Path | None = None, env: Mapping[str, str] | None = None,
              stderr: int | None = subprocess.STDOUT) -> subprocess.Popen[str]:
    """Start ``python -m p2pshare ARGS`` in the background (stdout piped; stderr with it
    unless ``stderr`` says otherwise)."""
    return subprocess.Popen([sys.executable, "-m", "p2pshare", *args], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env=cli_env(env), cwd=cwd)


def read_until(stream: IO[str], needle: str, timeout: float = DEADLINE) -> str:
    """Read lines from a child's output until one contains ``needle``; return all read.

    Lines are read by a thread per stream (see ``_lines``), so a line already buffered
    inside ``stream`` is seen at once: waiting on the pipe's descriptor would miss it.
    """
    lines = _lines(stream)
    seen: list[str] = []
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            lines.put(None)  # EOF stays visible to the next reader
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} not seen within {timeout} s; got:\n{''.join(seen)}")


def read_rest(stream: IO[str], timeout: float = DEADLINE) -> str:
    """Everything a child writes to ``stream`` from here until it closes it."""
    lines = _lines(stream)
    seen: list[str] = []
    end = time.monotonic() + timeout
    try:
        while (line := lines.get(timeout=max(0.0, end - time.monotonic()))) is not None:
            seen.append(line)
    except queue.Empty:
        raise AssertionError(f"output not closed within {timeout} s; got:\n"
                             f"{''.join(seen)}") from None
    lines.put(None)
    return "".join(seen)


_pumps: weakref.WeakKeyDictionary[IO[str], queue.Queue[str | None]] = (
    weakref.WeakKeyDictionary())


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """The lines of ``stream`` as a queue filled by a daemon thread; None marks EOF."""
    lines = _pumps.get(stream)
    if lines is None:
        lines = _pumps[stream] = queue.Queue()

        def pump(out: queue.Queue[str | None] = lines) -> None:
            for line in iter(stream.readline, ""):
                out.put(line)
            out.put(None)

        threading.Thread(target=pump, daemon=True, name="read_until").start()
    return lines


def mutated(data: st.DataObject, raw: bytes, inserts: bytes) -> bytes:
    """``raw`` with 1 to 4 bytes flipped, dropped or inserted (one of ``inserts``): near
    misses of a well-formed message, for a quick path held to the general one."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(out) - 1))
        op = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if op == "flip":
            out[i] = data.draw(st.integers(0, 255))
        elif op == "drop":
            del out[i]
        else:
            out.insert(i, data.draw(st.sampled_from(inserts)))
    return bytes(out)
