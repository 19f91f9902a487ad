"""The P2P-CI commands end to end, as a user runs them: real processes on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from p2pshare.samples import sample_text, write_sample_rfcs

from ..aio import HOST, free_port
from ..helpers import read_rest, read_until, run_cli, spawn_cli, wait_for

SERVER_UP = re.compile(r"\[Server\] listening on \S+:(\d+)")
PEER_UP = re.compile(r"\[Peer\] upload server on port (\d+)")


@contextmanager
def process(args: list[str]) -> Iterator[subprocess.Popen[str]]:
    """A ``p2pshare`` child that is killed (if still running) when the block ends."""
    proc = spawn_cli(args)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def started(proc: subprocess.Popen[str], pattern: re.Pattern[str], needle: str) -> int:
    """Wait for ``proc``'s start-up line and return the port it names."""
    assert proc.stdout is not None
    m = pattern.search(read_until(proc.stdout, needle))
    assert m is not None
    return int(m.group(1))


@pytest.fixture
def server() -> Iterator[str]:
    """``p2pshare server`` on 127.0.0.1, any free port; yields ``HOST:PORT``."""
    with process(["server", "--host", HOST, "--port", "0"]) as proc:
        yield f"{HOST}:{started(proc, SERVER_UP, '[Server] listening on')}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0  # SIGTERM ends the server cleanly


@contextmanager
def peer(server: str, folder: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``p2pshare peer --no-menu`` sharing ``folder``; yields it and its upload port once
    it has registered its RFCs."""
    args = ["peer", "--server", server, "--dir", str(folder), "--hostname", HOST, "--no-menu"]
    with process([*args, *extra]) as proc:
        yield proc, started(proc, PEER_UP, "[Peer] upload server on port")


def listed(server: str) -> list[dict[str, Any]]:
    done = run_cli(["list", "--server", server, "--json"])
    assert done.returncode == 0, done.stderr
    records: list[dict[str, Any]] = json.loads(done.stdout)
    return records


def failed(done: subprocess.CompletedProcess[str], reason: str, *, logs: bool = False) -> None:
    """The command failed with a non-zero status and a one-line reason on stderr: the only
    line, or (for the long-running commands, which log) the last."""
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert lines and lines[-1].startswith("p2pshare: ") and reason in lines[-1], done.stderr
    assert logs or len(lines) == 1, done.stderr


@pytest.fixture
def rfcs_b(tmp_path: Path) -> Path:
    write_sample_rfcs(tmp_path / "b", {2345: 28_000, 3457: 120_000})
    return tmp_path / "b"


# ------------------------------------------------------------------------ one-shot commands
def test_list_lookup_get(server: str, rfcs_b: Path, tmp_path: Path) -> None:
    with peer(server, rfcs_b) as (_, port):
        assert listed(server) == [
            {"rfc": 3457, "title": "Requirements for IPsec Remote Access Scenarios",
             "host": HOST, "port": port},
            {"rfc": 2345, "title": "Domain Names and Company Name Retrieval",
             "host": HOST, "port": port}]
        table = run_cli(["list", "--server", server])
        assert table.returncode == 0 and "Requirements for IPsec" in table.stdout
        assert table.stderr == ""
        found = run_cli(["lookup", "2345", "--server", server, "--json"])
        assert json.loads(found.stdout) == [
            {"rfc": 2345, "title": "Domain Names and Company Name Retrieval",
             "host": HOST, "port": port}]
        got = run_cli(["get", "3457", "--server", server, "--dir", str(tmp_path), "--json"])
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["path"] == str(tmp_path / "rfc3457.txt")
        assert (tmp_path / "rfc3457.txt").read_bytes() == sample_text(3457, 120_000)
        failed(run_cli(["lookup", "9999", "--server", server]), "404 Not Found")
        failed(run_cli(["get", "9999", "--server", server, "--dir", str(tmp_path)]),
               "RFC 9999: 404 Not Found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "rfc3457.txt"]


def test_failures_are_one_line(tmp_path: Path) -> None:
    unreachable = f"{HOST}:{free_port()}"
    failed(run_cli(["list", "--server", unreachable]), "cannot connect")
    failed(run_cli(["get", "1", "--server", unreachable, "--dir", str(tmp_path)]),
           "cannot connect")
    failed(run_cli(["get", "1", "--server", unreachable, "--dir", str(tmp_path / "no")]),
           "is not a folder")
    bad = run_cli(["list", "--server", "127.0.0.1:http"])
    assert bad.returncode == 2 and "not HOST[:PORT]" in bad.stderr


def test_get_when_no_listed_holder_answers(server: str, tmp_path: Path) -> None:
    """A record whose upload server is gone: GET fails with one line naming each attempt."""
    host, port = server.split(":")
    dead = free_port()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"ADD RFC 77 P2P-CI/1.0\r\nHost: {HOST}\r\nPort: {dead}\r\n"
                     "Title: Gone\r\n\r\n".encode())
        assert sock.makefile("rb").readline() == b"P2P-CI/1.0 200 OK\r\n"
        failed(run_cli(["get", "77", "--server", server, "--dir", str(tmp_path)]),
               f"RFC 77: no holder could send it ({HOST}:{dead}: PeerGone: cannot connect")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ the peer process
def test_peer_driven_through_a_pipe(server: str, rfcs_b: Path, tmp_path: Path) -> None:
    mine = tmp_path / "a"
    write_sample_rfcs(mine, {123: 6_000})
    with peer(server, rfcs_b):
        script = "list\nLOOKUP 123\nget 2345\n6\nversion\nlookup\n9999\nbogus\nquit\nlist\n"
        done = run_cli(["peer", "--server", server, "--dir", str(mine), "--hostname", HOST],
                       input=script)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "LIST ALL P2P-CI/1.0" in out and "LOOKUP RFC 123 P2P-CI/1.0" in out
        assert "RFC 123 A Proferred Official ICP 127.0.0.1" in out
        assert "GET RFC 2345 P2P-CI/1.0" in out and "Content-Type: text/plain" in out
        assert "P2P-CI/1.0 400 Bad Request" in out
        assert "P2P-CI/1.0 505 P2P-CI Version Not Supported" in out
        assert "RFC number?" in out and "LOOKUP RFC 9999 P2P-CI/1.0" in out
        assert "unknown command 'bogus'" in out
        assert out.count("LIST ALL P2P-CI/1.0") == 1  # nothing after quit ran
        assert (mine / "rfc2345.txt").read_bytes() == sample_text(2345, 28_000)
        assert all(r["host"] == HOST and r["rfc"] in (2345, 3457) for r in listed(server))


def test_peer_quits_at_end_of_input(server: str, tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path, {123: 6_000})
    done = run_cli(["peer", "--server", server, "--dir", str(tmp_path)], input="3\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "=> 200 OK: 1 record(s)" in done.stdout
    wait_for(lambda: listed(server) == [], what="the peer's records dropped")


def test_killed_peer_disappears_from_list(server: str, rfcs_b: Path, tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "c", {8446: 9_000})
    with peer(server, rfcs_b) as (_, b_port), peer(server, tmp_path / "c") as (c, c_port):
        assert {r["port"] for r in listed(server)} == {b_port, c_port}
        c.send_signal(signal.SIGKILL)
        c.wait(timeout=10)
        wait_for(lambda: {r["port"] for r in listed(server)} == {b_port},
                 what="the killed peer's records dropped")


def test_peer_exits_cleanly_on_sigterm(server: str, rfcs_b: Path) -> None:
    with peer(server, rfcs_b) as (proc, _):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None and "Traceback" not in read_rest(proc.stdout)
    wait_for(lambda: listed(server) == [], what="the peer's records dropped")


def test_peer_reconnects_when_the_server_restarts(rfcs_b: Path) -> None:
    port = free_port()
    server = f"{HOST}:{port}"
    with process(["server", "--host", HOST, "--port", str(port)]) as first:
        started(first, SERVER_UP, "[Server] listening on")
        with peer(server, rfcs_b):
            first.kill()
            first.wait(timeout=10)
            with process(["server", "--host", HOST, "--port", str(port)]) as second:
                started(second, SERVER_UP, "[Server] listening on")
                wait_for(lambda: len(listed(server)) == 2, what="the peer registered again")


def test_server_port_in_use(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    failed(run_cli(["server", "--host", HOST, "--port", port]), "cannot listen", logs=True)


# ------------------------------------------------------------------------ the demo
def test_demo_exits_0(tmp_path: Path) -> None:
    for _ in range(2):  # again in the same kept folder, which now holds the downloaded file
        done = run_cli(["demo", "--dir", str(tmp_path)])
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Every step behaved as the P2P-CI/1.0 handout specifies." in done.stdout
        assert "✘" not in done.stdout
        assert (tmp_path / "peerA" / "rfc2345.txt").read_bytes() == sample_text(2345, 28_000)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_demo_on_either_event_loop(loop: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo (index server, peers, uploads) works on either loop when told which."""
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    monkeypatch.setenv("P2PSHARE_LOOP", loop)
    done = run_cli(["demo", "--dir", str(tmp_path)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Every step behaved as the P2P-CI/1.0 handout specifies." in done.stdout


def test_a_setting_that_cannot_be_used_maps_to_the_usage_status() -> None:
    """One mapping of errors to statuses (``exits.from_error``) for every path: a
    ``ConfigError`` (a setting, ``P2PSHARE_LOOP``) is status 2, as the command line ends
    on it, not the 1 of any other failure."""
    from p2pshare.cli.exits import Exit, from_error
    from p2pshare.errors import ConfigError, P2PError

    assert from_error(ConfigError("P2PSHARE_LOOP='x'")) is Exit.USAGE
    assert from_error(P2PError("other")) is Exit.FAILURE


@pytest.mark.parametrize("command", [
    ["files", "--server", f"{HOST}:1"],  # a coroutine of its own
    ["fetch", "0" * 64, "--server", f"{HOST}:1"],  # one wrapped in another (a summary)
    ["get", "2345", "--server", f"{HOST}:1"],  # one wrapped in a time limit
    ["config"],  # no event loop at all
])
@pytest.mark.parametrize(("value", "needle"), [
    ("UVlop", "P2PSHARE_LOOP='UVlop': expected asyncio or uvloop"),
    ("uvloop", "P2PSHARE_LOOP=uvloop, but uvloop is not installed"),
])
def test_a_loop_that_cannot_be_had_is_a_usage_error(command: list[str], value: str,
                                                    needle: str, tmp_path: Path) -> None:
    """A misspelt loop, or uvloop where it is not installed, is status 2 and one line
    whatever the command, not a silent fallback to asyncio's loop (nothing starts, and
    no coroutine is left unawaited)."""
    (tmp_path / "uvloop.py").write_text("raise ImportError('not installed here')\n")
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    done = run_cli(command, env={"P2PSHARE_LOOP": value, "PYTHONPATH": path})
    assert done.returncode == 2, done.stdout + done.stderr
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_each_command_is_registered_by_the_module_named_in_owners() -> None:
    import argparse
    import importlib

    from p2pshare.cli.main import MODULES, OWNERS

    registered = {}
    for name in MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"p2pshare.cli.{name}").register(sub)
        registered.update(dict.fromkeys(sub.choices, name))
    assert registered == OWNERS


def test_a_command_runs_with_start_up_frozen_and_young_passes_spaced() -> None:
    import gc

    from p2pshare.cli._run import GC_YOUNG, run

    seen: dict[str, object] = {}

    async def command() -> int:
        seen["frozen"], seen["threshold"] = gc.get_freeze_count(), gc.get_threshold()
        return 3

    before = gc.get_threshold()
    try:
        assert run(command()) == 3
    finally:  # this test process goes on as it was
        gc.unfreeze()
        gc.set_threshold(*before)
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 1000
    assert seen["threshold"] == (GC_YOUNG, *before[1:])
