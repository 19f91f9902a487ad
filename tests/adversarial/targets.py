"""The six servers under attack, each started on 127.0.0.1 (port 0), and a well-behaved
client's exchange with each (``probe``) that must still work after any attack.

Every server here is the real one, in this process; ``serve.py`` runs the same ones in a
process of their own when a test needs to measure one (memory) or lower its deadlines.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from p2pshare import limits
from p2pshare.dipeer.index import RFCIndex
from p2pshare.dipeer.server import RFCServer
from p2pshare.errors import Status
from p2pshare.index.server import IndexServer
from p2pshare.peer.client import IndexClient, fetch_from
from p2pshare.peer.upload import UploadServer
from p2pshare.protocol import di
from p2pshare.registry import wire
from p2pshare.registry.server import RegistrationServer
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.link import PeerLink
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.pieces import full
from p2pshare.swarm.seeder import PieceServer
from p2pshare.swarm.storage import Library, PieceFile
from p2pshare.swarm.tracker import Tracker

from ..aio import HOST, serving

PIECE = 16 * 1024
DATA = bytes(range(256)) * 300  # 76,800 bytes: five pieces, the last one short
MANIFEST = Manifest("data.bin", len(DATA), PIECE, tuple(
    hashlib.sha256(DATA[i:i + PIECE]).digest() for i in range(0, len(DATA), PIECE)))
RFC_TEXT = b"RFC 1 for the adversarial tests\r\n" * 100


# Starts a server for files under a folder; yields its port. ``limit=N`` sets its
# connection limit (its constructor's own argument for it).
Start = Callable[..., AbstractAsyncContextManager[int]]
Probe = Callable[[int, Path], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Target:
    """One server kind.

    Attributes:
        start: runs the server in this process.
        probe: a well-behaved client's exchange with the server at a port; raises if the
            server does not serve it.
        request: a well-formed request head, the base of the framing cases.
        follow: for servers that keep connections open, a request whose answer shows that
            a connection survived; None for one-exchange servers.
    """

    name: str
    start: Start
    probe: Probe
    request: bytes
    follow: bytes | None = None


# ----------------------------------------------------------------------------- index
def index_server(_tmp: Path, *, limit: int | None = None, records: int = 0
                 ) -> AbstractAsyncContextManager[int]:
    """The index server with its swarm tracker, as ``p2pshare server`` runs it, holding
    ``records`` records of 10,000 a connection (gone connections of 127.0.0.9)."""
    server = IndexServer(tracker=Tracker(), max_connections=limit or limits.MAX_CONNECTIONS)
    per = limits.MAX_RECORDS_PER_CONNECTION
    for n in range(records):
        owner = f"filler-{n // per}"
        source = f"127.0.0.{9 + n // limits.MAX_RECORDS_PER_SOURCE}"
        server.index.add(owner, 1 + n % 999_999, "A title of a filler record",
                         f"filler{n // per}.example", 1, source)
    return serving(server)


async def probe_index(port: int, _tmp: Path) -> None:
    client = IndexClient(HOST, port, "probe.example", 4242)
    await client.connect()
    try:
        added = await client.add(4242, "Probe")
        assert added.status == Status.OK, added
        found = await client.lookup(4242)
        assert found.ok and [(r.host, r.port) for r in found.records] == [("probe.example",
                                                                            4242)]
    finally:
        await client.aclose()


async def probe_tracker(port: int, _tmp: Path) -> None:
    tracker = await TrackerClient.connect(HOST, port)
    try:
        await tracker.announce(MANIFEST, "probe.example", 4243)
        assert MANIFEST.id in [f.swarm for f in await tracker.files()]
        assert await tracker.manifest(MANIFEST.id) == MANIFEST
    finally:
        await tracker.aclose()


# ----------------------------------------------------------------------------- upload
def rfc_folder(tmp: Path) -> Path:
    """``tmp/shared``: rfc1.txt, and a directory named rfc3.txt (never served)."""
    folder = tmp / "shared"
    (folder / "rfc3.txt").mkdir(parents=True, exist_ok=True)
    (folder / "rfc1.txt").write_bytes(RFC_TEXT)
    return folder


def upload_server(tmp: Path, *, limit: int | None = None) -> AbstractAsyncContextManager[int]:
    return serving(UploadServer(rfc_folder(tmp), max_uploads=limit or limits.MAX_UPLOADS))


async def probe_upload(port: int, tmp: Path) -> None:
    into = tmp / "downloads"
    into.mkdir(exist_ok=True)
    assert await fetch_from(into, 1, HOST, port) == len(RFC_TEXT)
    assert (into / "rfc1.txt").read_bytes() == RFC_TEXT


# ----------------------------------------------------------------------------- P2P-DI
def registration_server(_tmp: Path, *, limit: int | None = None
                        ) -> AbstractAsyncContextManager[int]:
    return serving(RegistrationServer(max_connections=limit or limits.MAX_CONNECTIONS))


async def probe_rs(port: int, _tmp: Path) -> None:
    reply = await wire.exchange(HOST, port, di.Register("probe.example", 4244), None)
    assert reply.status == Status.OK, reply
    assert di.parse_registered(reply.response)[0] > 0


@asynccontextmanager
async def rfc_server(tmp: Path, *, limit: int | None = None, remote: int = 0
                     ) -> AsyncIterator[int]:
    """An RFC server holding rfc1.txt, and ``remote`` records of other peers' RFCs (its
    index budgets raised to hold them all)."""
    index = RFCIndex(max_records=max(remote, limits.DI_MAX_INDEX_RECORDS),
                     max_per_peer=max(remote, limits.DI_MAX_RECORDS_PER_PEER))
    index.add_local(1, "One")
    index.merge(di.IndexLine(n % 999_999 + 1, "A remote RFC title", f"h{n}.example", 1000,
                             7200) for n in range(remote))
    server = RFCServer(rfc_folder(tmp), index, max_connections=limit or limits.MAX_UPLOADS)
    async with serving(server) as port:
        index.me = di.PeerAddr(HOST, port)
        yield port


async def probe_rfc(port: int, _tmp: Path) -> None:
    reply = await wire.exchange(HOST, port, di.RFCQuery(HOST), None)
    assert reply.status == Status.OK and reply.body.startswith(b"RFC 1 One "), reply


# ----------------------------------------------------------------------------- swarm
@asynccontextmanager
async def piece_server(tmp: Path, *, limit: int | None = None) -> AsyncIterator[int]:
    """The piece server; ``limit`` connections are served, as many more told 503."""
    path = tmp / "data.bin"
    path.write_bytes(DATA)
    library = Library()
    library.add(PieceFile(MANIFEST, [open(path, "rb", buffering=0)],  # noqa: SIM115
                          full(MANIFEST.count)))
    try:
        async with serving(PieceServer(library, max_uploads=limit or limits.SWARM_MAX_UPLOADS)
                           ) as port:
            yield port
    finally:
        library.close()


async def probe_pieces(port: int, _tmp: Path) -> None:
    link = await PeerLink.connect((HOST, port))
    try:
        link.request(MANIFEST.id, 4)
        index, head, body = await link.read_piece()
        assert (index, head.status, bytes(body)) == (4, Status.OK, DATA[4 * PIECE:]), head
    finally:
        link.close()


CI_LOOKUP = b"LOOKUP RFC 1 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"
SWARM_FILES = b"FILES ALL P2P-SWARM/1.0\r\n\r\n"
SWARM_PIECE = f"PIECE {MANIFEST.id} 0 P2P-SWARM/1.0\r\n\r\n".encode()

TARGETS = {
    "index": Target("index", index_server, probe_index, CI_LOOKUP, follow=CI_LOOKUP),
    # The tracker lives in the index server: the same server, spoken to in P2P-SWARM.
    "tracker": Target("tracker", index_server, probe_tracker, SWARM_FILES, follow=SWARM_FILES),
    "upload": Target("upload", upload_server, probe_upload,
                     b"GET RFC 1 P2P-CI/1.0\r\nHost: h\r\nOS: x\r\n\r\n"),
    "rs": Target("rs", registration_server, probe_rs,
                 b"PQUERY ALL P2P-DI/1.0\r\nHost: h\r\n\r\n"),
    "rfc": Target("rfc", rfc_server, probe_rfc, b"GET RFC-INDEX P2P-DI/1.0\r\nHost: h\r\n\r\n"),
    "pieces": Target("pieces", piece_server, probe_pieces, SWARM_PIECE, follow=SWARM_PIECE),
}
