"""Fuzz targets for P2P-DI: the RS and RFC server side, the client side, the list bodies.

Each target returns or raises ``RemoteProtocolError``; anything else is a finding. The
server target also checks that every list reply it builds from an accepted request reads
back whole (no line skipped) through ``parse_peers``/``parse_index``.
"""

from __future__ import annotations

from drive import fetch, serve

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError, Status
from p2pshare.protocol import Data, EndOfMessage, Event, Request, Response, di
from p2pshare.protocol._grammar import get_header, parse_http_date

TTL = int(limits.DI_TTL)


def _listed(records: list[di.PeerAddr] | list[di.IndexLine]) -> list[Event]:
    head, body = di.list_reply(records)
    parsed = di.parse_peers(body) if isinstance(records[0], di.PeerAddr) else \
        di.parse_index(body)
    assert parsed == di.Parsed(tuple(records), 0), f"{records!r} read back as {parsed!r}"
    return [head, Data(body), EndOfMessage()]


def _answer(req: Request, _body: bytes) -> list[Event]:
    """What the registration server and an RFC server answer (registry, dipeer)."""
    msg = di.interpret(req)
    if isinstance(msg, di.Rejected):
        return [di.rejected(msg), EndOfMessage()]
    if isinstance(msg, di.Register):
        return [di.registered(msg.cookie or 1, TTL), EndOfMessage()]
    if isinstance(msg, di.KeepAlive):
        return [di.kept_alive(TTL), EndOfMessage()]
    if isinstance(msg, di.Leave):
        return [di.response(Status.OK), EndOfMessage()]
    if isinstance(msg, di.PQuery):
        return _listed([di.PeerAddr(msg.host, 65400)])
    if isinstance(msg, di.RFCQuery):
        return _listed([di.IndexLine(7, "A title", msg.host, 65400, TTL)])
    return [di.file_reply(5, 0, msg.os, 0), Data(b"hello"), EndOfMessage()]


def _malformed(exc: RemoteProtocolError) -> list[Event]:
    return [di.response(exc.status), EndOfMessage()]


def di_server(data: bytes) -> None:
    """RS and RFC server: request bytes -> Connection(SERVER) -> di.interpret -> reply."""
    serve(di.server_connection(), data, _answer, _malformed)


_REQUESTS: tuple[di.DIRequest, ...] = (
    di.Register("peer-a.example", 65400, None, "Linux"),
    di.Register("peer-a.example", 65400, 42, "Linux"),
    di.KeepAlive("peer-a.example", 42),
    di.Leave("peer-a.example", 42),
    di.PQuery("peer-a.example", 42),
    di.RFCQuery("peer-b.example"),
    di.GetRFC(7, "peer-b.example", "Linux"),
)


def _reply(n: int, head: Response, _lines: list[bytes], body: bytes) -> None:
    """What registry.client and dipeer.client read from each reply."""
    msg = _REQUESTS[n % len(_REQUESTS)]
    di.check_version(head)
    if head.status != Status.OK:
        return
    if isinstance(msg, di.Register):
        di.parse_registered(head)
    elif isinstance(msg, di.KeepAlive):
        di.parse_ttl(head)
    elif isinstance(msg, di.PQuery):
        di.parse_peers(body)
    elif isinstance(msg, di.RFCQuery):
        di.parse_index(body)
    elif isinstance(msg, di.GetRFC):
        di.header_int(head, "Content-Length", limits.MAX_DOWNLOAD)
        parse_http_date(get_header(head.headers, "Last-Modified") or "")


def di_client(data: bytes) -> None:
    """A peer's side of each exchange: reply bytes -> Connection(CLIENT) -> parse_*.

    The input's second byte picks the request (one exchange per connection).
    """
    pick = data[1] if len(data) > 1 else 0
    conn = di.client_connection(64 * 1024)
    fetch(conn, data[:1] + data[2:], lambda _n: [di.to_event(_REQUESTS[pick % 7]),
                                                 EndOfMessage()],
          lambda _n, head, lines, body: _reply(pick, head, lines, body))


def di_bodies(data: bytes) -> None:
    """PQuery and RFCQuery reply bodies, and one line of each (never raise past parse_*)."""
    di.parse_peers(data)
    di.parse_index(data)
    line = data.split(b"\n", 1)[0]
    for parse in (di.parse_peer_line, di.parse_index_line):
        try:
            parse(line)
        except RemoteProtocolError:
            pass
