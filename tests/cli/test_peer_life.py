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
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pshare.cli.exits import Exit
from p2pshare.dipeer.client import rfc_query
from p2pshare.protocol import di
from p2pshare.samples import sample_text, write_sample_rfcs

from ..aio import HOST, free_port
from ..di.test_di_cli import active_peers, processes, start_peer, start_rs
from ..helpers import DEADLINE, read_until, run_cli, spawn_cli, wait_for
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


# ------------------------------------------------------------------------ item 4: wire log
def add_raw(index: str, line: str) -> socket.socket:
    """A raw connection that ADDed one record (open: the record lives while it does)."""
    host, port = index.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(line.encode())
    assert sock.makefile("rb").readline() == b"P2P-CI/1.0 200 OK\r\n"
    return sock


def test_v_logs_each_ci_message_both_ways_escaped(tmp_path: Path) -> None:
    """Client and server: ``>`` sent, ``<`` received, the other side's address, CRLFs and
    a hostile title's C1 control (CSI, ``\\x9b``) escaped."""
    with process(["-v", "server", "--host", HOST, "--port", "0"]) as proc:
        index = f"{HOST}:{started(proc, SERVER_UP, '[Server] listening on')}"
        with add_raw(index, "ADD RFC 1 P2P-CI/1.0\r\nHost: evil\r\nPort: 9\r\n"
                            "Title: bad\x9btitle\r\n\r\n"):
            done = ok(run_cli(["-v", "lookup", "1", "--server", index]))
        assert proc.stdout is not None
        seen = read_until(proc.stdout, " LOOKUP RFC 1 ")
        seen += read_until(proc.stdout, "RFC 1 bad")  # the reply to the LOOKUP
    err = done.stderr
    assert f"WIRE p2pshare.wire: > {index} LOOKUP RFC 1 P2P-CI/1.0\\r\\nHost: " in err, err
    assert f"WIRE p2pshare.wire: < {index} P2P-CI/1.0 200 OK\\r\\n\\r\\n" in err, err
    assert f"< {index} RFC 1 bad\\x9btitle evil 9\\r\\n" in err, err
    assert "\x9b" not in err
    # the server's side: what it received from the client, and its reply
    assert re.search(r"WIRE p2pshare\.wire: < 127\.0\.0\.1:\d+ LOOKUP RFC 1 P2P-CI/1\.0\\r\\n",
                     seen), seen
    assert re.search(r"WIRE p2pshare\.wire: > 127\.0\.0\.1:\d+ RFC 1 bad\\x9btitle evil 9", seen)


def test_without_v_nothing_of_the_wire_is_logged(index: str) -> None:
    done = run_cli(["lookup", "1", "--server", index])
    assert "p2pshare.wire" not in done.stderr and "LOOKUP" not in done.stderr


def test_v_logs_get_heads_and_the_body_by_length(index: str, tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "b", {2345: 3000})
    out = tmp_path / "out"
    out.mkdir()
    with peer(index, tmp_path / "b") as (_proc, upload):
        done = ok(run_cli(["-v", "get", "2345", "--server", index, "--dir", str(out)]))
    err = done.stderr
    assert f"> {HOST}:{upload} GET RFC 2345 P2P-CI/1.0\\r\\n" in err, err
    assert f"< {HOST}:{upload} P2P-CI/1.0 200 OK\\r\\n" in err, err
    assert "Content-Length: 3000" in err and sample_text(2345, 3000)[:200].decode() not in err


def test_v_logs_each_di_message_both_ways(tmp_path: Path) -> None:
    with processes() as started_:
        rs_port = start_rs(started_, "--no-messages")
        done = ok(run_cli(["-v", "di-peers", "--rs", f"{HOST}:{rs_port}"]))
    assert f"> {HOST}:{rs_port} PQUERY ALL P2P-DI/1.0\\r\\n" in done.stderr, done.stderr
    assert f"< {HOST}:{rs_port} P2P-DI/1.0 404 " in done.stderr, done.stderr


def test_v_logs_each_tracker_message_both_ways(index: str) -> None:
    done = ok(run_cli(["-v", "files", "--server", index]))
    assert f"> {index} " in done.stderr and f"< {index} P2P-SWARM/1.0 " in done.stderr, \
        done.stderr


# ------------------------------------------------------------------------ item 5: wrong server
@contextlib.contextmanager
def one_line_server(first: bytes) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that sends ``first`` to each client and closes (b"":
    closes at once); yields ``HOST:PORT``."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(DEADLINE)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.sendall(first)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"{HOST}:{listener.getsockname()[1]}"
    finally:
        listener.close()


@contextlib.contextmanager
def http_server() -> Iterator[str]:
    """``python -m http.server`` on 127.0.0.1, any free port; yields ``HOST:PORT``."""
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", HOST],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        port = re.search(r"port (\d+)", read_until(proc.stdout, "Serving HTTP"))
        assert port is not None
        yield f"{HOST}:{port.group(1)}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def piece_server(index: str, tmp_path: Path) -> Iterator[str]:
    """``p2pshare share`` of one file: its piece server's ``HOST:PORT``."""
    (tmp_path / "shared.bin").write_bytes(b"x" * 1000)
    args = ["share", str(tmp_path / "shared.bin"), "--server", index, "--listen", HOST]
    with process(args) as proc:
        assert proc.stdout is not None
        port = re.search(r"piece server listening on \S+:(\d+)",
                         read_until(proc.stdout, "piece server listening"))
        assert port is not None
        yield f"{HOST}:{port.group(1)}"


def wrong(args: list[str], where: str, reached: str, *, logs: bool = False) -> None:
    """The command fails with the network status and one line naming what it reached: its
    only line on stderr, or (``logs``: a command that logs as it starts) its last."""
    done = run_cli(args)
    assert done.returncode == Exit.NETWORK, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1].startswith(f"p2pshare: {where}: reached {reached}"), done.stderr
    assert ", not a" in lines[-1] or ", not the" in lines[-1]
    assert logs or len(lines) == 1, done.stderr


CI_WANTED = "not a P2P-CI index server"


def test_ci_clients_name_the_wrong_server_they_reached(index: str, tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "b", {2345: 3000})
    with processes() as started_, http_server() as web, \
            peer(index, tmp_path / "b") as (_proc, upload), piece_server(index, tmp_path) as pieces:
        rs = f"{HOST}:{start_rs(started_, '--no-messages')}"
        for where, reached in (
                (rs, "a P2P-DI/1.0 server (a registration server or a P2P-DI peer?)"),
                (f"{HOST}:{upload}", "a P2P-CI/1.0 upload server (a peer's upload port?)"),
                (pieces, "a P2P-SWARM/1.0 server (a swarm piece server?)"),
                (web, "an HTTP server")):
            for command in (["lookup", "1"], ["list"]):
                wrong([*command, "--server", where], where, reached)
            wrong(["get", "1", "--server", where, "--dir", str(tmp_path)], where, reached)
            wrong(["peer", "--server", where, "--dir", str(tmp_path / "b"), "--no-menu"],
                  where, reached, logs=True)
        assert f"{CI_WANTED}" in run_cli(["list", "--server", rs]).stderr


def test_clients_name_what_sent_a_foreign_first_line_or_nothing() -> None:
    with one_line_server(b"SSH-2.0-OpenSSH_9.6\r\n") as ssh:
        wrong(["lookup", "1", "--server", ssh], ssh, "something that speaks no protocol of "
              "ours (its first line: 'SSH-2.0-OpenSSH_9.6')")
        wrong(["di-peers", "--rs", ssh], ssh, "something that speaks no protocol of ours")
        wrong(["files", "--server", ssh], ssh, "something that speaks no protocol of ours")
    with one_line_server(b"") as closed:
        done = run_cli(["lookup", "1", "--server", closed])
        assert done.returncode == Exit.NETWORK
        assert "closed the connection without a reply" in done.stderr, done.stderr


def test_di_and_swarm_clients_name_the_wrong_server_they_reached(index: str) -> None:
    with processes() as started_, http_server() as web:
        rs = f"{HOST}:{start_rs(started_, '--no-messages')}"
        wrong(["di-peers", "--rs", index], index, "a P2P-CI/1.0 index server")
        wrong(["di-peers", "--rs", web], web, "an HTTP server")
        wrong(["files", "--server", rs], rs,
              "a P2P-DI/1.0 server (a registration server or a P2P-DI peer?)")
        wrong(["files", "--server", web], web, "an HTTP server")
    with one_line_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as web:
        for args in (["lookup", "1", "--server", web], ["di-peers", "--rs", web],
                     ["files", "--server", web]):
            wrong(args, web, "an HTTP server (HTTP/1.1), not ")
