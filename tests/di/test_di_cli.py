"""The P2P-DI commands as real processes: a SIGKILLed peer, the menu from a pipe, one-shots."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from p2pshare.cli.exits import Exit
from p2pshare.protocol import di
from p2pshare.registry.client import RSClient
from p2pshare.samples import write_sample_rfcs

from ..aio import HOST
from ..helpers import read_until, run_cli, spawn_cli, wait_for
from .net import content


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Children started by a test; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def start_rs(started: list[subprocess.Popen[str]], *extra: str) -> int:
    rs = spawn_cli(["rs", "--host", HOST, "--port", "0", *extra])
    started.append(rs)
    assert rs.stdout is not None
    seen = read_until(rs.stdout, "listening on")
    port = re.search(r"listening on \S+:(\d+)", seen)
    assert port is not None, seen
    return int(port.group(1))


def start_peer(started: list[subprocess.Popen[str]], rs_port: int, folder: Path
               ) -> di.PeerAddr:
    peer = spawn_cli(["di-peer", "--rs", f"{HOST}:{rs_port}", "--dir", str(folder),
                      "--hostname", HOST, "--bind", HOST, "--no-menu", "--no-messages"])
    started.append(peer)
    assert peer.stdout is not None
    seen = read_until(peer.stdout, "registered with the RS")
    port = re.search(r"RFC server on port (\d+)", seen)
    assert port is not None, seen
    return di.PeerAddr(HOST, int(port.group(1)))


def active_peers(rs_port: int) -> list[di.PeerAddr]:
    """An anonymous PQuery: every active peer."""
    _reply, peers = asyncio.run(RSClient(HOST, rs_port).pquery())
    return list(peers.items)


def folder_with(root: Path, name: str, rfcs: dict[int, int]) -> Path:
    folder = root / name
    write_sample_rfcs(folder, rfcs)
    return folder


def test_a_sigkilled_peer_stops_being_listed_once_its_ttl_passes(tmp_path: Path) -> None:
    with processes() as started:
        rs_port = start_rs(started, "--ttl", "3", "--no-messages")
        victim = start_peer(started, rs_port, folder_with(tmp_path, "victim", {1: 100}))
        survivor = start_peer(started, rs_port, folder_with(tmp_path, "survivor", {2: 100}))
        assert set(active_peers(rs_port)) == {victim, survivor}
        started[1].send_signal(signal.SIGKILL)  # no Leave: only the TTL can tell
        wait_for(lambda: victim not in active_peers(rs_port), what="the victim's TTL to pass")
        assert active_peers(rs_port) == [survivor]  # it kept itself alive meanwhile
        started[2].send_signal(signal.SIGTERM)  # a clean exit sends Leave
        assert started[2].wait(timeout=20) == 0
        assert active_peers(rs_port) == []


MENU_INPUT = ("pquery\nrfcquery\nget 2345\nget 2345\nindex\nget 99\nnonsense\nleave\n"
              "pquery\n")


def test_the_menu_works_from_a_pipe(tmp_path: Path) -> None:
    with processes() as started:
        rs_port = start_rs(started)
        b = start_peer(started, rs_port, folder_with(tmp_path, "b", {123: 500, 2345: 9000}))
        a_dir = tmp_path / "a"
        a_dir.mkdir()
        done = run_cli(["di-peer", "--rs", f"{HOST}:{rs_port}", "--dir", str(a_dir),
                        "--hostname", HOST, "--bind", HOST], input=MENU_INPUT)
        out = done.stdout
        assert done.returncode == 0, out + done.stderr
        assert (a_dir / "rfc2345.txt").read_bytes() == content(2345, 9000)
        for text in ("REGISTER PEER P2P-DI/1.0\nHost: 127.0.0.1\n",
                     "PQUERY ALL P2P-DI/1.0\n", f"127.0.0.1 {b.port}\n",
                     "GET RFC-INDEX P2P-DI/1.0\n",
                     f"RFC 2345 Domain Names and Company Name Retrieval 127.0.0.1 {b.port} 7200",
                     "GET RFC 2345 P2P-DI/1.0\n", "Content-Length: 9000\n",
                     f"=> saved {a_dir / 'rfc2345.txt'} (9000 bytes)",
                     "=> RFC 99: no active peer holds it",
                     f"=> RFC 2345 is already in {a_dir}",
                     "unknown command 'nonsense'", "LEAVE PEER P2P-DI/1.0\n", "=> 200 OK"):
            assert text in out, text
        assert out.count("LEAVE PEER") == 1  # EOF after leave: no second Leave


def test_one_shot_commands(tmp_path: Path) -> None:
    with processes() as started:
        rs_port = start_rs(started, "--no-messages")
        b = start_peer(started, rs_port, folder_with(tmp_path, "b", {8: 2048}))
        rs = f"{HOST}:{rs_port}"
        listed = run_cli(["di-peers", "--rs", rs, "--json"])
        assert json.loads(listed.stdout) == [{"host": HOST, "port": b.port}]
        got = run_cli(["di-get", "8", "--rs", rs, "--dir", str(tmp_path), "--json"])
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["size"] == 2048
        assert (tmp_path / "rfc8.txt").read_bytes() == content(8, 2048)
        again = run_cli(["di-get", "8", "--rs", rs, "--dir", str(tmp_path)])
        assert again.returncode == 0 and "already" in again.stdout
        missing = run_cli(["di-get", "9", "--rs", rs, "--dir", str(tmp_path)])
        assert missing.returncode == 3 and "RFC 9: no active peer holds it (RFCQuery" \
            in missing.stderr  # Exit.NOT_FOUND; nobody's index names it: none was asked
        assert run_cli(["di-peers", "--rs", "127.0.0.1:1"]).returncode == Exit.NETWORK
