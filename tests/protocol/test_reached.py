"""protocol/_reached.py: the kind of server a reply came from, named in one line."""

from __future__ import annotations

import pytest

from p2pshare.protocol import INDEX_SERVER, Response, foreign, line_kind, server_kind


@pytest.mark.parametrize(("reply", "kind"), [
    (Response(404, "P2P-CI/1.0"), INDEX_SERVER),
    (Response(400, "P2P-CI/1.0", (("Date", "x"), ("OS", "Linux"))),
     "a P2P-CI/1.0 upload server (a peer's upload port?)"),
    (Response(200, "P2P-CI/1.0", (("OS", "Linux"),)), INDEX_SERVER),  # a 200 is no proof
    (Response(505, "P2P-DI/1.0"),
     "a P2P-DI/1.0 server (a registration server or a P2P-DI peer?)"),
    (Response(400, "P2P-SWARM/1.0"), "a P2P-SWARM/1.0 server (a swarm piece server?)"),
    (Response(400, "HTTP/1.1"), "an HTTP server (HTTP/1.1)"),
    (Response(200, "GOPHER/9"), "a GOPHER/9 server"),
])
def test_server_kind(reply: Response, kind: str) -> None:
    assert server_kind(reply) == kind


def test_line_kind_names_a_first_line_that_is_not_ours() -> None:
    assert line_kind(b"P2P-CI/1.0 200 OK\r\nRFC x", "P2P-CI/1.0") is None  # only malformed
    assert line_kind(b"HTTP/1.0 400 Bad\r\n", "P2P-CI/1.0") == "an HTTP server (HTTP/1.0)"
    assert line_kind(b"<!DOCTYPE HTML>\n<html>", "P2P-DI/1.0") == \
        "an HTTP server (it answered with HTML)"
    assert line_kind(b"", "P2P-CI/1.0") == "a server that sent no status line"
    assert line_kind(b"\x1b[2J" + b"z" * 9000, "P2P-CI/1.0") == \
        "something that speaks no protocol of ours (its first line: " + repr(
            "\x1b[2J" + "z" * 56) + ")"


def test_foreign_is_a_wrong_server_or_none() -> None:
    wrong = foreign(b"SSH-2.0-x\r\n", "h:1", "P2P-CI/1.0", "a P2P-CI index server")
    assert wrong is not None and str(wrong) == ("h:1: reached something that speaks no "
        "protocol of ours (its first line: 'SSH-2.0-x'), not a P2P-CI index server")
    assert foreign(b"P2P-CI/1.0 999\r\n", "h:1", "P2P-CI/1.0", "x") is None
