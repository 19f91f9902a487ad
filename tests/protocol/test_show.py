"""protocol/_show.py: messages as the wire log shows them; bodies summarised, never dumped."""

from __future__ import annotations

import logging

import pytest

from p2pshare import wirelog
from p2pshare.protocol import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Lines,
    Request,
    Response,
    wire_text,
)
from p2pshare.protocol._show import WIRE_LINES


def test_a_head_reads_as_on_the_wire() -> None:
    assert wire_text(Request("LOOKUP", "RFC 1", "P2P-CI/1.0", (("Host", "h"), ("Port", "5")))) \
        == "LOOKUP RFC 1 P2P-CI/1.0\r\nHost: h\r\nPort: 5\r\n\r\n"
    assert wire_text(Response(404, "P2P-CI/1.0")) == "P2P-CI/1.0 404 Not Found\r\n\r\n"


def test_bodies_are_summarised() -> None:
    assert wire_text(Data(b"x" * 5000)) == "[5000 body bytes]"
    lines = tuple(b"RFC %d t h 1" % i for i in range(WIRE_LINES + 3))
    text = wire_text(Lines(lines))
    assert text is not None and text.count("\r\n") == WIRE_LINES
    assert text.endswith(f"[3 more lines, {sum(len(x) + 2 for x in lines[-3:])} bytes]")
    assert wire_text(EndOfMessage()) is None
    assert wire_text(ConnectionClosed()) == "[closed]"


def test_the_wire_log_escapes_and_is_level_15(caplog: pytest.LogCaptureFixture) -> None:
    assert wirelog.WIRE == 15 and logging.getLevelName(15) == "WIRE"
    with caplog.at_level(wirelog.WIRE, logger="p2pshare.wire"):
        assert wirelog.enabled()
        wirelog.message(wirelog.SENT, "h:1", "A \x1b[31m\r\n")
    assert caplog.records[0].getMessage() == "> h:1 A \\x1b[31m\\r\\n"
    with caplog.at_level(logging.INFO, logger="p2pshare.wire"):
        assert not wirelog.enabled()
