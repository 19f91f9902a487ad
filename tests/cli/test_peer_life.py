"""A peer's life as a user runs it (issue #13): real processes on loopback.

Downloads take the mode any downloader gives (``0666`` less the umask); a peer started
before its server waits for it; a running peer notices files added to its folder; ``-v``
logs each message as it crosses the wire; a client that reached the wrong kind of server
says what it reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pshare.dipeer.client import rfc_query
from p2pshare.protocol import di
from p2pshare.samples import sample_text, write_sample_rfcs

from ..aio import HOST, free_port
from ..di.test_di_cli import active_peers, processes, start_peer, start_rs
from ..helpers import read_until, run_cli, spawn_cli, wait_for
from .test_cli import SERVER_UP, peer, process, started

GROUP_WRITABLE = 0o002


@pytest.fixture
def index() -> Iterator[str]:
    """``p2pshare server`` on 127.0.0.1, any free port; yields ``HOST:PORT``."""
    with process(["server", "--host", HOST, "--port", "0"]) as proc:
        yield f"{HOST}:{started(proc, SERVER_UP, '[Server] listening on')}"


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """The children started in the block inherit ``mask``."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


# ------------------------------------------------------------------------ item 3: file mode
def test_get_creates_the_file_0666_less_the_umask(index: str, tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "b", {2345: 3000})
    out = tmp_path / "out"
    out.mkdir()
    with peer(index, tmp_path / "b"), umask(GROUP_WRITABLE):
        ok(run_cli(["get", "2345", "--server", index, "--dir", str(out)]))
    assert mode_of(out / "rfc2345.txt") == 0o664


def test_di_get_creates_the_file_0666_less_the_umask(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "b", {8: 2048})
    out = tmp_path / "out"
    out.mkdir()
    with processes() as started:
        rs = f"{HOST}:{start_rs(started, '--no-messages')}"
        start_peer(started, int(rs.rsplit(':', 1)[1]), tmp_path / "b")
        with umask(GROUP_WRITABLE):
            ok(run_cli(["di-get", "8", "--rs", rs, "--dir", str(out)]))
    assert mode_of(out / "rfc8.txt") == 0o664


# ------------------------------------------------------------------------ helpers
def looked_up(server: str, rfc: int) -> list[dict[str, Any]]:
    """LOOKUP ``rfc`` (JSON): the records, none on a 404 or an unreachable server."""
    done = run_cli(["lookup", str(rfc), "--server", server, "--json"])
    return json.loads(done.stdout) if done.returncode == 0 else []


def upload_status(port: int, rfc: int) -> bytes:
    """The status line a P2P-CI upload server on ``port`` answers GET RFC ``rfc`` with."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(f"GET RFC {rfc} P2P-CI/1.0\r\nHost: {HOST}\r\nOS: test\r\n\r\n".encode())
        return sock.makefile("rb").readline()


def indexed_by(peer_addr: di.PeerAddr) -> set[int]:
    """The RFC numbers a P2P-DI peer's RFCQuery answer lists."""
    _reply, parsed = asyncio.run(rfc_query(peer_addr))
    return {line.rfc for line in parsed.items}


# ------------------------------------------------------------------------ item 1: start first
def test_peer_started_before_its_index_server_registers_once_it_is_up(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "b", {2345: 3000})
    port = free_port()
    server = f"{HOST}:{port}"
    with peer(server, tmp_path / "b") as (proc, upload):
        assert proc.stdout is not None
        read_until(proc.stdout, "retry in")  # a line per attempt; it did not quit
        assert upload_status(upload, 2345) == b"P2P-CI/1.0 200 OK\r\n"  # serving meanwhile
        with process(["server", "--host", HOST, "--port", str(port)]) as index:
            started(index, SERVER_UP, "[Server] listening on")
            wait_for(lambda: [r["port"] for r in looked_up(server, 2345)] == [upload],
                     what="the peer registered with the late server")


def test_di_peer_started_before_its_rs_registers_once_it_is_up(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "b", {8: 2048})
    port = free_port()
    with processes() as started_:
        proc = spawn_cli(["di-peer", "--rs", f"{HOST}:{port}", "--dir", str(tmp_path / "b"),
                          "--hostname", HOST, "--bind", HOST, "--no-menu", "--no-messages"])
        started_.append(proc)
        assert proc.stdout is not None
        read_until(proc.stdout, "retry in")
        rs = spawn_cli(["rs", "--host", HOST, "--port", str(port), "--no-messages"])
        started_.append(rs)
        assert rs.stdout is not None
        read_until(rs.stdout, "listening on")
        wait_for(lambda: [p.host for p in active_peers(port)] == [HOST],
                 what="the peer registered with the late RS")
        read_until(proc.stdout, "registered with the RS")


# ------------------------------------------------------------------------ item 2: rescans
def test_a_running_peer_adds_the_rfc_files_that_appear(index: str, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    write_sample_rfcs(folder, {2345: 3000})
    with peer(index, folder) as (_proc, upload):
        (folder / "rfc7777.txt").write_bytes(sample_text(7777, 1000))
        wait_for(lambda: [r["port"] for r in looked_up(index, 7777)] == [upload],
                 what="the new file ADDed")
        (folder / "rfc2345.txt").unlink()  # P2P-CI has no REMOVE: no longer served...
        wait_for(lambda: upload_status(upload, 2345) == b"P2P-CI/1.0 404 Not Found\r\n")
        assert [r["port"] for r in looked_up(index, 2345)] == [upload]  # ...record stays


def test_a_running_di_peer_indexes_the_rfc_files_that_appear(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    write_sample_rfcs(folder, {8: 2048})
    with processes() as started_:
        me = start_peer(started_, start_rs(started_, "--no-messages"), folder)
        assert indexed_by(me) == {8}
        (folder / "rfc9.txt").write_bytes(sample_text(9, 1000))
        wait_for(lambda: indexed_by(me) == {8, 9}, what="the new file in the RFC index")
        (folder / "rfc8.txt").unlink()
        wait_for(lambda: indexed_by(me) == {9}, what="the removed file out of the index")
