"""Processes of the interop tests: started alone, watched for sockets, always reaped.

Strategy: every client runs as a process group of its own (``start_new_session``), with
"die with the parent" set, its output in a log file (a pipe nobody reads would block it),
and is stopped with SIGTERM then SIGKILL to the whole group and waited for, so no test
leaves a process behind. While a test waits, ``Watched.check_sockets`` lists the group's
TCP and UDP sockets (``ss -tunap``) and records every one bound to or connected with an
address outside 127.0.0.0/8 and ::1: the proof that a client's DHT, local peer discovery,
UPnP, NAT-PMP and outside trackers are really off, not only configured off.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..helpers import wait_for

STOP_DEADLINE = 10.0  # seconds a client may take to exit on SIGTERM before SIGKILL
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (for clients that cannot be told port 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def is_loopback(endpoint: str) -> bool:
    """Whether an ``ss`` address (``127.0.0.1%lo:80``, ``[::1]:80``, ``0.0.0.0:*``) stays on
    loopback: a loopback host, or an unconnected peer (port ``*``)."""
    host, _, port = endpoint.rpartition(":")
    host = host.strip("[]").split("%")[0]
    if port == "*" and host in ("0.0.0.0", "::", "*", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def group_pids(pgid: int) -> set[int]:
    """The processes of process group ``pgid``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.add(int(entry.name))
            except ProcessLookupError:
                continue
    return pids


def stray_sockets(pids: set[int]) -> list[str]:
    """``ss`` lines of the sockets of ``pids`` that leave loopback."""
    lines = subprocess.run(["ss", "-tunapH"], capture_output=True, text=True,
                           timeout=10).stdout.splitlines()
    strays = []
    for line in lines:
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        fields = line.split()
        if owners & pids and len(fields) >= 6:
            if not (is_loopback(fields[4]) and is_loopback(fields[5])):
                strays.append(line)
    return strays


class Watched:
    """One client process; ``log`` holds its output."""

    CHECK_EVERY = 0.5  # seconds between socket checks while waiting

    def __init__(self, name: str, args: Sequence[str], log: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name, self.log = name, log
        self.strays: list[str] = []
        self._checked = 0.0
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          preexec_fn=_die_with_parent, env=env, cwd=cwd)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_sockets(self, force: bool = False) -> None:
        """Record the sockets that leave loopback (at most every ``CHECK_EVERY`` s)."""
        now = time.monotonic()
        if (force or now - self._checked >= self.CHECK_EVERY) and self.alive():
            self._checked = now
            self.strays += stray_sockets(group_pids(self.popen.pid))

    def stop(self, grace: float = STOP_DEADLINE) -> None:
        """SIGTERM the group, SIGKILL what is left of it after ``grace`` seconds, reap."""
        self.check_sockets(force=True)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, STOP_DEADLINE)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        self.popen.wait()


def wait_until(condition: Callable[[], object], timeout: float, what: str,
               watched: Sequence[Watched] = ()) -> None:
    """``wait_for`` ``condition``, checking the sockets of ``watched`` meanwhile; on
    failure the message ends with the tail of each one's log."""

    def check() -> object:
        for proc in watched:
            proc.check_sockets()
        return condition()

    try:
        wait_for(check, timeout, what)
    except AssertionError as e:
        logs = "\n".join(f"--- {p.name}:\n{p.output[-3000:]}" for p in watched)
        raise AssertionError(f"{e}\n{logs}") from None
