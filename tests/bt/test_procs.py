"""The harness's own checks: the socket watch sees a socket that leaves loopback, and a
stopped client leaves no process behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..helpers import wait_for
from .procs import Watched, group_pids, is_loopback

# A child that binds one UDP socket to HOST, says so, and waits to be stopped.
CHILD = ("import signal, socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
         "s.bind((sys.argv[1], 0)); print('bound', flush=True); signal.pause()")


def test_endpoints_on_loopback() -> None:
    assert is_loopback("127.0.0.1%lo:6881") and is_loopback("127.0.1.7:80")
    assert is_loopback("[::1]:6881") and is_loopback("0.0.0.0:*") and is_loopback("*:*")
    assert not is_loopback("0.0.0.0:6881") and not is_loopback("[::]:6881")
    assert not is_loopback("192.0.2.2:6881") and not is_loopback("[fd00::2]:443")


def watch(tmp_path: Path, host: str) -> Watched:
    proc = Watched("child", [sys.executable, "-c", CHILD, host], tmp_path / f"{host}.log")
    wait_for(lambda: "bound" in proc.output, what="the child's socket")
    return proc


def test_a_socket_on_every_address_is_a_stray(tmp_path: Path) -> None:
    inside, outside = watch(tmp_path, "127.0.0.1"), watch(tmp_path, "0.0.0.0")
    try:
        for proc in (inside, outside):
            proc.check_sockets(force=True)
        assert inside.strays == []
        assert len(outside.strays) == 1 and "0.0.0.0:" in outside.strays[0]
    finally:
        for proc in (inside, outside):
            proc.stop()
    for proc in (inside, outside):
        assert proc.popen.returncode is not None and not group_pids(proc.popen.pid)
        assert not os.path.exists(f"/proc/{proc.popen.pid}")
