"""Every system over IPv6, as a user runs it: real processes on ``::1``, addressed as
``[::1]:PORT`` (skipped on a machine without IPv6 loopback).

Each server listens on ``::1`` only, so nothing can succeed over IPv4 by accident; each peer
listens on every address (the default) and advertises its address on the connection to the
server, ``::1``, which the other side must then record, list and connect to.
"""

from __future__ import annotations

import json
import re
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from p2pshare.samples import sample_text, write_sample_rfcs

from ..helpers import IPV6_LOOPBACK, read_until, run_cli
from .test_cli import process

pytestmark = pytest.mark.skipif(not IPV6_LOOPBACK, reason="no IPv6 loopback here")

V6 = "::1"


def line(proc: subprocess.Popen[str], needle: str, pattern: str) -> re.Match[str]:
    """Wait for ``needle`` in ``proc``'s output; ``pattern`` must match what came."""
    assert proc.stdout is not None
    seen = read_until(proc.stdout, needle)
    found = re.search(pattern, seen)
    assert found is not None, seen
    return found


def server_on_v6(stack: ExitStack, command: str, *extra: str) -> str:
    """``p2pshare server`` or ``rs`` listening on ::1 only; returns ``[::1]:PORT``."""
    proc = stack.enter_context(process([command, "--host", V6, "--port", "0", *extra]))
    port = line(proc, "listening on", r"listening on \[::1\]:(\d+)").group(1)
    return f"[{V6}]:{port}"


def test_ci_peer_and_get_over_ipv6(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "a", {123: 5_000})
    (tmp_path / "b").mkdir()
    with ExitStack() as stack:
        server = server_on_v6(stack, "server")
        peer = stack.enter_context(process(["peer", "--server", server, "--dir",
                                            str(tmp_path / "a"), "--no-menu"]))
        port = line(peer, "upload server on port", r"advertising \[::1\]:(\d+)").group(1)
        done = run_cli(["lookup", "123", "--server", server, "--json"])
        assert done.returncode == 0, done.stderr
        assert [(r["host"], r["port"]) for r in json.loads(done.stdout)] == [(V6, int(port))]
        done = run_cli(["get", "123", "--server", server, "--dir", str(tmp_path / "b")])
        assert done.returncode == 0, done.stderr
        assert f"from [{V6}]:{port}" in done.stdout + done.stderr
    assert (tmp_path / "b" / "rfc123.txt").read_bytes() == sample_text(123, 5_000)


def test_di_peer_and_get_over_ipv6(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "a", {321: 4_000})
    (tmp_path / "b").mkdir()
    with ExitStack() as stack:
        rs = server_on_v6(stack, "rs", "--no-messages")
        peer = stack.enter_context(process(["di-peer", "--rs", rs, "--dir", str(tmp_path / "a"),
                                            "--no-menu", "--no-messages"]))
        line(peer, "registered with the RS", r"advertising \[::1\]:\d+")
        done = run_cli(["di-peers", "--rs", rs, "--json"])
        assert done.returncode == 0, done.stderr
        assert [p["host"] for p in json.loads(done.stdout)] == [V6]
        done = run_cli(["di-get", "321", "--rs", rs, "--dir", str(tmp_path / "b")])
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "b" / "rfc321.txt").read_bytes() == sample_text(321, 4_000)


def test_swarm_share_and_fetch_over_ipv6(tmp_path: Path) -> None:
    shared = tmp_path / "shared.bin"
    shared.write_bytes(bytes(range(256)) * 1_000)
    with ExitStack() as stack:
        server = server_on_v6(stack, "server")
        seeder = stack.enter_context(process(["share", str(shared), "--server", server]))
        swarm = line(seeder, "serving", r"([0-9a-f]{64}) shared\.bin").group(1)
        done = run_cli(["fetch", swarm, "--server", server, "--out", str(tmp_path / "out")],
                       timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "shared.bin").read_bytes() == shared.read_bytes()


def test_the_demo_over_ipv6(tmp_path: Path) -> None:
    done = run_cli(["demo", "--listen", V6, "--dir", str(tmp_path)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Every step behaved as the P2P-CI/1.0 handout specifies." in done.stdout
    assert "✘" not in done.stdout
    assert re.search(r"✔ \[::1\]:\d+ registered 2 RFCs", done.stdout), done.stdout
    assert re.search(r"GET from \[::1\]:\d+: 200 OK", done.stdout), done.stdout
    assert (tmp_path / "peerA" / "rfc2345.txt").read_bytes() == sample_text(2345, 28_000)
