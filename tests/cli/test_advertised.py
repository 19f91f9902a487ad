"""What a peer advertises, as its start-up line says it (``net.advertise``)."""

from __future__ import annotations

from pathlib import Path

from p2pshare.samples import write_sample_rfcs

from ..aio import HOST
from .test_cli import process
from .test_ipv6 import line

UNRESOLVABLE = "no-such-peer.invalid"  # RFC 6761: .invalid never resolves


def test_a_name_that_does_not_resolve_is_warned_and_advertised(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path, {123: 1_000})
    with process(["server", "--host", HOST, "--port", "0"]) as server:
        port = line(server, "listening on", r"listening on \S+:(\d+)").group(1)
        with process(["peer", "--server", f"{HOST}:{port}", "--dir", str(tmp_path),
                      "--hostname", UNRESOLVABLE, "--no-menu"]) as peer:
            seen = line(peer, "upload server on port", r"advertising (.*)").string
            assert f"{UNRESOLVABLE} does not resolve here; advertising it anyway" in seen
            assert f"advertising {UNRESOLVABLE}:" in seen
            assert "(as given; it does not resolve here)" in seen


def test_the_default_is_our_address_towards_the_server(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path, {123: 1_000})
    with process(["server", "--host", HOST, "--port", "0"]) as server:
        port = line(server, "listening on", r"listening on \S+:(\d+)").group(1)
        with process(["peer", "--server", f"{HOST}:{port}", "--dir", str(tmp_path),
                      "--no-menu"]) as peer:
            line(peer, "upload server on port", rf"; advertising {HOST}:\d+\n")
