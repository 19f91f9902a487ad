"""docs/p2p-di.md: every example tagged ``p2p-di`` is exactly what the codec reads and sends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from p2pshare.protocol import Data, EndOfMessage, Request, Response, di

from ..protocol.test_di import feed, merged

DOC = Path(__file__).resolve().parents[2] / "docs" / "p2p-di.md"
BLOCKS = re.findall(r"```p2p-di\n(.*?)```", DOC.read_text("utf-8"), re.S)


def wire(block: str) -> bytes:
    """A block as bytes: CRLF line ends, the blank line ending a head added if absent."""
    head, blank, body = block.partition("\n\n")
    data = head.rstrip("\n").replace("\n", "\r\n") + "\r\n\r\n"
    return (data + body.replace("\n", "\r\n")).encode()


def test_the_document_has_examples_of_every_message() -> None:
    starts = {block.split("\n", 1)[0] for block in BLOCKS}
    for start in ("REGISTER PEER", "KEEPALIVE PEER", "PQUERY ALL", "LEAVE PEER",
                  "GET RFC-INDEX", "GET RFC 2345", "P2P-DI/1.0 200 OK",
                  "P2P-DI/1.0 404 No Active Peers", "P2P-DI/1.0 409 Unknown Cookie",
                  "P2P-DI/1.0 505"):
        assert any(s.startswith(start) for s in starts), start


@pytest.mark.parametrize("block", BLOCKS)
def test_each_example_is_exact(block: str) -> None:
    data = wire(block)
    if block.startswith("P2P-DI/"):
        client = di.client_connection()
        client.send_all(di.to_event(di.PQuery("x")), EndOfMessage())
        events = merged(feed(client, data))
        head = events[0]
        assert isinstance(head, Response)
        body = events[1].data if isinstance(events[1], Data) else b""
        server = di.server_connection()
        feed(server, b"PQUERY ALL P2P-DI/1.0\r\nHost: x\r\n\r\n")
        again = server.send_all(head, *([Data(body)] if body else []), EndOfMessage())
        assert again == data
    else:
        events = feed(di.server_connection(), data)
        assert isinstance(events[0], Request)
        msg = di.interpret(events[0])
        assert not isinstance(msg, di.Rejected), msg
        assert di.client_connection().send_all(di.to_event(msg), EndOfMessage()) == data
