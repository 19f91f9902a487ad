"""Fuzz targets for P2P-SWARM: tracker and piece server side, both client readers, the
bodies (ranges, bitfields, PEERS and FILES lines) and manifests from the network.

Each target returns or raises ``RemoteProtocolError`` (a manifest checked against an id
may also raise ``IntegrityError``); anything else is a finding. Round trips are checked
where we build what we parse: a HAVE we accept re-encodes to the same request, ranges and
bitfields decode to the mask they encode.
"""

from __future__ import annotations

import hashlib

from drive import Steps, fetch, serve, split

from p2pshare import limits
from p2pshare.errors import IntegrityError, RemoteProtocolError, Status
from p2pshare.protocol import Data, EndOfMessage, Event, Request, Response
from p2pshare.protocol import swarm as sp
from p2pshare.protocol._grammar import get_header
from p2pshare.swarm.manifest import Manifest

# A real manifest (three pieces) and the piece counts the body decoders are given.
MANIFEST = Manifest("rfc7.txt", 40_000, 16 * 1024,
                    tuple(hashlib.sha256(bytes([i])).digest() for i in range(3)))
COUNTS = (0, 1, 3, 8, 13, 64, limits.MAX_PIECES)
_FILE = sp.FileEntry(MANIFEST.id, MANIFEST.size, MANIFEST.piece_size, 1, 2, 1.5, "rfc7.txt")


def _answer(req: Request, body: bytes) -> list[Event]:
    """What the tracker (swarm.tracker) and a piece server (swarm.seeder) answer."""
    msg = sp.interpret(req, body)
    if isinstance(msg, sp.Rejected):
        return _reply(*sp.response(msg.status))
    if isinstance(msg, sp.Announce):
        try:
            Manifest.from_bytes(msg.manifest, msg.swarm)
        except (RemoteProtocolError, IntegrityError):
            return _reply(*sp.response(Status.BAD_REQUEST))
    elif isinstance(msg, sp.Have):
        again = sp.interpret(*sp.to_request(msg))
        assert again == msg, f"{msg!r} re-encoded reads as {again!r}"
    elif isinstance(msg, sp.GetPeers):
        peers = [sp.PeerEntry("10.0.0.1", 65400, 5)]
        return _reply(*sp.response(Status.OK, sp.encode_peers(peers, MANIFEST.count)))
    elif isinstance(msg, sp.ListFiles):
        return _reply(*sp.response(Status.OK, _FILE.to_line()))
    elif isinstance(msg, sp.GetManifest):
        return _reply(*sp.response(Status.OK, MANIFEST.to_bytes()))
    elif isinstance(msg, sp.GetPiece):
        return [sp.piece_head(5, "0-1"), Data(b"piece"), EndOfMessage()]
    return _reply(*sp.response())


def _reply(head: Response, body: bytes) -> list[Event]:
    return [head, *((Data(body),) if body else ()), EndOfMessage()]


def _malformed(exc: RemoteProtocolError) -> list[Event]:
    return _reply(*sp.response(exc.status))


def swarm_server(data: bytes) -> None:
    """Tracker and piece server: request bytes -> Connection(SERVER) -> interpret."""
    serve(sp.server_connection(), data, _answer, _malformed)


_ASKED: tuple[sp.SwarmRequest, ...] = (
    sp.GetPiece(MANIFEST.id, 1),
    sp.GetPeers(MANIFEST.id),
    sp.ListFiles(),
    sp.GetManifest(MANIFEST.id),
    sp.Have(MANIFEST.id, 0b101),
    sp.Announce(MANIFEST.id, "10.0.0.1", 65400, MANIFEST.to_bytes()),
)


def _read_answer(msg: sp.SwarmRequest, head: Response, body: bytes) -> None:
    """What swarm.client and swarm.fetch do with each answer; a bad one ends the input."""
    have = get_header(head.headers, "Have")
    if have:
        sp.decode_ranges(have, MANIFEST.count)
    if head.status != Status.OK:
        return
    if isinstance(msg, sp.GetPeers):
        sp.decode_peers(body, MANIFEST.count)
    elif isinstance(msg, sp.ListFiles):
        sp.decode_files(body)
    elif isinstance(msg, sp.GetManifest):
        Manifest.from_bytes(body)


def asked_for(ctl: int) -> list[sp.SwarmRequest]:
    """The requests a pipelined input has in flight: up to four, from bits 4-6."""
    return [_ASKED[((ctl >> 4) + i) % len(_ASKED)] for i in range(1 + (ctl >> 5 & 3))]


def _pipelined(ctl: int, payload: bytes) -> None:
    """swarm.link: up to four requests in flight, answers read whole, in order."""
    client = sp.PipelinedClient(64 * 1024)
    asked = asked_for(ctl)
    for msg in asked:
        client.send(*sp.to_request(msg))
    steps, answered = Steps.for_input(payload), 0
    for chunk in (payload[i:i + 1 + ctl % 61] for i in range(0, len(payload), 1 + ctl % 61)):
        client.receive_data(chunk)
        while (answer := client.next_answer()) is not None:
            steps.take()
            _read_answer(asked[answered], *answer)
            answered += 1
    client.receive_data(b"")
    while client.next_answer() is not None:
        steps.take()


def swarm_client(data: bytes) -> None:
    """Answer bytes -> PipelinedClient (control bit 7 clear) or Connection(CLIENT)."""
    ctl, payload = split(data)
    try:
        if not ctl & 0x80:
            _pipelined(ctl, payload)
            return
    except (RemoteProtocolError, IntegrityError):
        return
    asked = _ASKED[((ctl >> 4) & 7) % len(_ASKED)]

    def read(_n: int, head: Response, _lines: list[bytes], body: bytes) -> None:
        try:
            _read_answer(asked, head, body)
        except RemoteProtocolError:
            pass

    fetch(sp.client_connection(64 * 1024), data,
          lambda _n: [*sp.to_request(asked)[:1], *_body(asked), EndOfMessage()], read)


def _body(msg: sp.SwarmRequest) -> list[Event]:
    body = sp.to_request(msg)[1]
    return [Data(body)] if body else []


def swarm_bodies(data: bytes) -> None:
    """Ranges (HAVE bodies, Have headers), bitfields, PEERS and FILES answer bodies."""
    ctl, payload = split(data)
    count = COUNTS[ctl % len(COUNTS)]
    text = payload.decode("utf-8", "replace")
    for decode in (sp.decode_ranges, sp.decode_bitfield):
        try:
            mask = decode(text, count)
        except RemoteProtocolError:
            continue
        assert decode(sp.encode_ranges(mask), count) == mask if decode is sp.decode_ranges \
            else decode(sp.encode_bitfield(mask, count), count) == mask
    for decode_body in (lambda b: sp.decode_peers(b, count), sp.decode_files):
        try:
            decode_body(payload)
        except RemoteProtocolError:
            pass


def swarm_manifest(data: bytes) -> None:
    """Manifest bytes from a tracker or peer -> Manifest.from_bytes (with and without id)."""
    try:
        manifest = Manifest.from_bytes(data)
    except RemoteProtocolError:
        return
    assert manifest.to_bytes() == data
    assert Manifest.from_bytes(data, hashlib.sha256(manifest.content_bytes()).hexdigest()
                               ) == manifest
