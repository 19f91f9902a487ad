"""A real ``redis-server`` for the tests of the shared store (docs/scale-out.md).

``redis_server`` starts one on a free loopback port in a temporary folder, with no
persistence, waits until it answers PING, and stops it after the block. A test that needs
it is skipped, saying why, only when the ``redis-server`` binary is not installed (CI
installs it: ``.ci/run``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from .aio import HOST, free_port
from .helpers import wait_for

BINARY = "redis-server"


def _pings(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """A private redis-server (on ``port``, else a free one); yields its URL
    ``redis://127.0.0.1:PORT/0``. Started again on the same port, it is a Redis restart."""
    binary = shutil.which(BINARY)
    if binary is None:
        pytest.skip(f"{BINARY} is not installed (apt-get install -y redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", HOST, "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: proc.poll() is not None or _pings(port), what="redis-server up")
        assert proc.poll() is None, "redis-server exited at start"
        yield f"redis://{HOST}:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


class _Node(Protocol):
    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


_N = TypeVar("_N", bound=_Node)


@asynccontextmanager
async def started(made: Sequence[_N]) -> AsyncIterator[list[_N]]:
    """The store nodes ``made``, each started, all closed after the block."""
    try:
        for node in made:
            await node.start()
        yield list(made)
    finally:
        for node in made:
            await node.aclose()
