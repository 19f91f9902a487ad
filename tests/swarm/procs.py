"""Real ``p2pshare`` processes on loopback for swarm tests: a server, seeders, leeches.

Each process writes its output to a file, not a pipe: a long-running process whose pipe
nobody reads would block once the pipe is full. Tests wait for lines in those files.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from p2pshare.protocol.swarm import decode_ranges

from ..helpers import DEADLINE, cli_env, run_cli, wait_for

LOCAL = ["--listen", "127.0.0.1"]
_names = itertools.count()


class Proc:
    """A ``python -m p2pshare ...`` process whose output goes to ``log``."""

    def __init__(self, args: list[str], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"{args[0]}-{next(_names)}.log"
        with open(self.log, "w") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", "p2pshare", *args],
                                          stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, env=cli_env())

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_line(self, pattern: str) -> re.Match[str]:
        """The first match of ``pattern`` in the output, once it has appeared."""
        found: re.Match[str] = wait_for(lambda: self._search(pattern), what=repr(pattern))
        return found

    def _search(self, pattern: str) -> re.Match[str] | None:
        if self.popen.poll() is not None and not re.search(pattern, self.output, re.M):
            raise AssertionError(f"exited with {self.popen.returncode}:\n{self.output}")
        return re.search(pattern, self.output, re.M)

    def finish(self, timeout: float = 3 * DEADLINE) -> str:
        """Wait for a good exit; return the output."""
        self.popen.wait(timeout=timeout)
        assert self.popen.returncode == 0, self.output
        return self.output

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The process stopped (SIGSTOP) for the block, then continued: meanwhile it keeps
        its connections, files and locks but does nothing, so a download under way is
        still under way at the block's end however long the block takes."""
        self.popen.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.popen.send_signal(signal.SIGCONT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextmanager
def running(args: list[str], logs: Path) -> Iterator[Proc]:
    proc = Proc(args, logs)
    try:
        yield proc
    finally:
        proc.stop()


@contextmanager
def server(logs: Path) -> Iterator[str]:
    """``p2pshare server`` on a free port; yields ``127.0.0.1:PORT``."""
    with running(["server", "--host", "127.0.0.1", "--port", "0"], logs) as proc:
        port = proc.wait_line(r"listening on \S+:(\d+)").group(1)
        yield f"127.0.0.1:{port}"


@contextmanager
def seeder(path: Path, address: str, logs: Path, *extra: str) -> Iterator[str]:
    """``p2pshare share PATH``; yields the swarm id once it is serving."""
    with running(["share", str(path), "--server", address, *LOCAL, *extra], logs) as proc:
        swarm = proc.wait_line(r"^([0-9a-f]{64}) ").group(1)
        proc.wait_line("serving")
        yield swarm


def fetch(target: str, address: str, out: Path, logs: Path, *extra: str) -> Proc:
    return Proc(["fetch", target, "--server", address, "--out", str(out), *LOCAL, *extra],
                logs)


def files(address: str) -> list[dict[str, object]]:
    done = run_cli(["files", "--server", address, "--json"])
    assert done.returncode == 0, done.stderr
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


def wait_seeders(address: str, count: int, what: str = "") -> None:
    wait_for(lambda: [f["seeders"] for f in files(address)] == [count],
             what=what or f"{count} seeder(s)")


@contextmanager
def killed_fetch(path: Path, address: str, out: Path, logs: Path) -> Iterator[str]:
    """A slow seed of ``path`` (a documented upload limit keeps the download going) and a
    fetch into ``out`` killed with SIGKILL once some pieces are verified; yields the swarm
    id while the slow seed still serves."""
    with seeder(path, address, logs, "--piece-size", "64K", "--max-upload-rate", "1M"
                ) as swarm:
        leech = fetch(swarm, address, out, logs)
        wait_for(lambda: verified_pieces(out) >= 8, what="some verified pieces")
        leech.stop(signal.SIGKILL)
        yield swarm


def verified_pieces(out: Path) -> int:
    """Pieces a download's resume record lists as verified (0 if it has none yet)."""
    for record in out.glob(".*.resume.json"):
        try:
            text = json.loads(record.read_text())["verified"]
        except (OSError, ValueError, KeyError):
            return 0
        return decode_ranges(text, 1 << 20).bit_count()
    return 0
