"""docs/swarm.md: every example tagged ``p2p-swarm`` is exactly what the code sends."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from p2pshare.errors import Status
from p2pshare.protocol import Data, EndOfMessage, Request, Response
from p2pshare.protocol import swarm as sp
from p2pshare.swarm.manifest import Manifest

DOC = Path(__file__).resolve().parents[2] / "docs" / "swarm.md"
TEXT = DOC.read_text("utf-8")
BLOCKS = [b.rstrip("\n") for b in re.findall(r"```p2p-swarm\n(.*?)```", TEXT, re.S)]

DATA = b"hello swarm\n" * 3000
M = Manifest("hello.txt", len(DATA), 16384,
             tuple(hashlib.sha256(DATA[i:i + 16384]).digest() for i in range(0, len(DATA), 16384)))


def shown(wire: bytes) -> str:
    """How the document shows bytes: LF for CRLF, no trailing line end."""
    return wire.decode().replace("\r\n", "\n").rstrip("\n")


def request(msg: sp.SwarmRequest) -> str:
    head, body = sp.to_request(msg)
    return shown(sp.client_connection().send_all(head, *([Data(body)] if body else []),
                                                 EndOfMessage()))


def answer(head: Response, body: bytes = b"") -> str:
    server = sp.server_connection()
    server.receive_data(f"PEERS {M.id} P2P-SWARM/1.0\r\n\r\n".encode())
    while not isinstance(server.next_event(), EndOfMessage):
        pass
    return shown(server.send_all(head, *([Data(body)] if body else []), EndOfMessage()))


def expected() -> list[str]:
    peers = [sp.PeerEntry("10.0.0.7", 41002, 0b111), sp.PeerEntry("10.0.0.9", 41003, 0b001)]
    files = sp.FileEntry(M.id, M.size, M.piece_size, 1, 1, 4 / 3, M.name).to_line()
    version = Request("PEERS", M.id, "P2P-SWARM/2.0")
    return [
        request(sp.Announce(M.id, "10.0.0.5", 41000, M.to_bytes())),
        answer(*sp.response()),
        request(sp.Have(M.id, 0b101)),
        request(sp.GetPeers(M.id)),
        answer(*sp.response(Status.OK, sp.encode_peers(peers, M.count))),
        request(sp.GetManifest(M.id)),
        answer(*sp.response(Status.OK, M.to_bytes())),
        answer(*sp.response(Status.NOT_FOUND)),
        request(sp.ListFiles()),
        answer(*sp.response(Status.OK, files)),
        request(sp.GetPiece(M.id, 2)),
        answer(*sp.busy(2)),
        shown(sp.client_connection().send_all(version, EndOfMessage())),
        answer(*sp.response(Status.VERSION_NOT_SUPPORTED)),
    ]


def test_every_example_is_exactly_what_the_code_sends() -> None:
    assert BLOCKS == expected()


def test_the_manifest_and_id_shown_are_real() -> None:
    assert M.id == "42a4f33de885e84ba94c1950a087e20f0dc12f4ef942e5595e9d250774b13bc1"
    assert M.id == hashlib.sha256(M.content_bytes()).hexdigest()
    assert M.content_bytes().decode() in TEXT  # what the id is the hash of
    assert M.to_bytes().decode() in TEXT and M.id in TEXT
    assert f"Content-Length: {M.length(2)}" in TEXT
    assert sp.encode_bitfield(0b101, 3) == "BQ==" and "`BQ==`" in TEXT
