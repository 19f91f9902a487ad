"""The piece server's sending: a piece the socket takes whole goes out at once, in the
request's own callback (one ``os.sendfile``, no task); the rest of one it does not take
whole follows as the socket drains, byte-exact; the pipelined requests of one read are
answered in one pass, and a client that never reads is still cut off."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Container
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from p2pshare import limits
from p2pshare.net.link import Link
from p2pshare.net.rate import limiter
from p2pshare.protocol import get_header
from p2pshare.protocol import swarm as sp
from p2pshare.swarm.link import PeerLink
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.pieces import full
from p2pshare.swarm.seeder import PieceServer, SentLog, _Upload
from p2pshare.swarm.storage import Library, PieceFile, hash_file

from ..aio import HOST, arun, serving
from ..helpers import async_wait_for, pace


@asynccontextmanager
async def seeded(path: Path, piece_size: int
                 ) -> AsyncIterator[tuple[int, Manifest, PieceServer]]:
    manifest = hash_file(path, piece_size)
    library = Library()
    library.add(PieceFile(manifest, [open(path, "rb", buffering=0)],  # noqa: SIM115
                          full(manifest.count)))
    try:
        server = PieceServer(library)
        async with serving(server) as port:
            yield port, manifest, server
    finally:
        library.close()


def count_waiting_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the count of every send of file bytes that waits for the socket."""
    calls: list[int] = []
    original = Link._send_file  # under ``sendfile`` and a quick answer's rest

    async def counted(self: Link, file: Any, offset: int, count: int) -> None:
        calls.append(count)
        await original(self, file, offset, count)

    monkeypatch.setattr(Link, "_send_file", counted)
    return calls


async def fetch_all(port: int, manifest: Manifest, ahead: int) -> list[bytes]:
    """Every piece, ``ahead`` requests in flight, each answer's body in order."""
    link = await PeerLink.connect((HOST, port))
    bodies: list[bytes] = []
    try:
        asked = 0
        while len(bodies) < manifest.count:
            while asked < manifest.count and asked - len(bodies) < ahead:
                link.request(manifest.id, asked)
                asked += 1
            index, head, body = await link.read_piece()
            assert (index, head.status) == (len(bodies), 200)
            bodies.append(bytes(body))
    finally:
        link.close()
    return bodies


@arun
async def test_a_piece_the_socket_takes_whole_needs_no_waiting_send(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(16 * 256 * 1024))
    waiting = count_waiting_sends(monkeypatch)
    async with seeded(path, 256 * 1024) as (port, manifest, _):
        bodies = await fetch_all(port, manifest, ahead=1)
    assert b"".join(bodies) == path.read_bytes()
    assert len(waiting) < manifest.count  # some went whole from the request's callback


@arun
async def test_the_rest_of_a_piece_follows_as_the_socket_drains(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """16 MiB pieces, two asked at once: more than the socket buffers take at once."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(2 * 16 * 1024 * 1024 - 12345))
    waiting = count_waiting_sends(monkeypatch)
    async with seeded(path, 16 * 1024 * 1024) as (port, manifest, _):
        bodies = await fetch_all(port, manifest, ahead=2)
    assert b"".join(bodies) == path.read_bytes()
    assert waiting  # at least one piece's rest waited for the socket


def pace_uploads(monkeypatch: pytest.MonkeyPatch, rate: int,
                 ports: Container[int] | None = None) -> None:
    """Every connection a server accepts (on one of ``ports``; None: any) sends at most
    ``rate`` bytes a second, paced by the kernel (``helpers.pace``: a full uplink)."""
    original = Link.connection_made

    def paced(self: Link, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if ports is None or sock.getsockname()[1] in ports:
            pace(sock, rate)
        original(self, transport)

    monkeypatch.setattr(Link, "connection_made", paced)


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO is Linux's")
@arun
async def test_a_seeder_held_back_by_the_network_says_its_uplink_is_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once its connection has had bytes to send for ``UPLINK_JUDGED_AFTER`` without
    waiting on the receiver, every answer says ``Uplink: full``, and so does the swarm's
    record (what a downloader's own answers repeat)."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(48 * 32 * 1024))  # 1.5 MiB: 0.75 s at 2 MB/s
    pace_uploads(monkeypatch, 2_000_000)
    async with seeded(path, 32 * 1024) as (port, manifest, server):
        link = await PeerLink.connect((HOST, port))
        said = []
        try:
            for index in range(manifest.count):
                link.request(manifest.id, index)
                _, head, body = await link.read_piece()
                assert (head.status, bytes(body)) == (200, manifest_piece(path, manifest,
                                                                          index))
                said.append(sp.uplink_full(head))
        finally:
            link.close()
        [pf] = server.library.files.values()
    first = said.index(True)
    assert 0 < first < manifest.count - 1 and all(said[first:]), said
    assert pf.uplink_full


@arun
async def test_a_seeder_whose_uplink_is_full_names_what_it_sends_to_others(
        tmp_path: Path) -> None:
    """Each answer's Sent header: the pieces begun for other connections still open within
    ``SENT_SECONDS`` that this one was not told of, on the quick path and the general
    one; none before the uplink is judged full, and none from a server that does not hold
    every piece (a downloader's)."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(16 * 32 * 1024))
    async with seeded(path, 32 * 1024) as (port, manifest, server):
        [pf] = server.library.files.values()
        a, b, c = [await PeerLink.connect((HOST, port)) for _ in range(3)]

        async def sent(link: PeerLink, index: int) -> str | None:
            link.request(manifest.id, index)
            _, head, body = await link.read_piece()
            assert (head.status, bytes(body)) == (200, manifest_piece(path, manifest, index))
            return get_header(head.headers, "Sent")

        try:
            assert await sent(a, 0) is None
            assert await sent(b, 1) is None  # not full: no news
            pf.uplink_full = True
            assert await sent(a, 3) is None  # nothing begun for others since it was judged
            assert await sent(b, 5) == "3"
            assert await sent(b, 6) is None  # its own are not news to it
            assert await sent(a, 7) == "5-6"
            assert await sent(c, 9) == "3,5-7"  # a newcomer hears of the whole window
            c.close()  # gone: what it was sent will not reach anyone from it
            await async_wait_for(lambda: server.uploads == 2)
            server.throttle = limiter(10 ** 9)  # the general path answers
            assert await sent(b, 11) == "7"
            pf.have &= ~1  # no longer a seeder of it: no news
            assert await sent(a, 12) is None
        finally:
            for link in (a, b, c):
                link.close()


def test_a_sent_log_tells_each_piece_once_within_its_budgets() -> None:
    log = SentLog()
    one, other, third = _Upload(), _Upload(), _Upload()
    cap, window = limits.MAX_SENT_PER_CONNECTION, limits.SENT_SECONDS
    for i in range(3 * cap):  # one connection asks for many and reads none
        log.add(i, one, 10.0)
    mask, cursor = log.news(other, 0, 10.0)
    assert mask == full(cap)  # only its first MAX_SENT_PER_CONNECTION are named
    assert log.news(other, cursor, 10.0) == (0, cursor)
    assert log.news(one, 0, 10.0)[0] == 0  # its own are no news to it
    log.add(3, other, 10.5)  # asked again within the window: not named again, nor renewed
    assert log.news(third, cursor, 10.5)[0] == 0
    assert log.news(third, cursor + 99, 10.5)[0] == full(cap)  # a cursor past the end (a
    # log made anew): told the fresh window, as a newcomer is
    late = 10.0 + window + 0.1
    assert log.news(other, 0, late)[0] == 0  # none of them is fresh any more
    log.add(3, other, late)  # now it may be named again, for a connection under budget
    assert log.news(one, cursor, late)[0] == 1 << 3
    other.gone = True  # closed: what it was sent is no longer news
    assert log.news(one, 0, late)[0] == 0
    log.add(3, third, late + 0.1)  # and the piece may be named again at once
    assert log.news(one, 0, late + 0.1)[0] == 1 << 3


def test_a_sent_log_holds_at_most_twice_its_budget() -> None:
    log = SentLog()
    uploads = [_Upload() for _ in range(3 * limits.MAX_SENT_LOG // limits.MAX_SENT_PER_CONNECTION)]
    piece = 0
    for upload in uploads:
        for _ in range(limits.MAX_SENT_PER_CONNECTION):
            log.add(piece, upload, 10.0)
            piece += 1
    assert len(log._entries) <= 2 * limits.MAX_SENT_LOG
    log.add(piece, uploads[0], 10.0 + 3 * limits.SENT_SECONDS)  # the rest are stale: cut
    assert len(log._entries) == 1 and len(log._latest) == 1


def manifest_piece(path: Path, manifest: Manifest, index: int) -> bytes:
    with path.open("rb") as f:
        f.seek(index * manifest.piece_size)
        return f.read(manifest.length(index))


async def ask_at_once(port: int, manifest: Manifest, indexes: list[int],
                      source: str = HOST) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect from ``source`` and write a PIECE request for each of ``indexes`` in one
    send (one segment on loopback: one read of the server's)."""
    reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    writer.write(b"".join(sp.piece_request(manifest.id, i) for i in indexes))
    await writer.drain()
    return reader, writer


async def read_answers(reader: asyncio.StreamReader, manifest: Manifest,
                       indexes: list[int]) -> list[tuple[int, bytes]]:
    """The (status, body) of the answer to each request, in the order they came."""
    client = sp.PipelinedClient()
    for i in indexes:
        client.send_piece(manifest.id, i, manifest.length(i))
    answers: list[tuple[int, bytes]] = []
    while len(answers) < len(indexes):
        data = await reader.read(1 << 20)
        assert data, "the server closed before answering every request"
        client.receive_data(data)
        while (found := client.next_answer()) is not None:
            answers.append((found[0].status, bytes(found[1])))
    return answers


def count_general_requests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records every request the general path (``PieceServer.request``) answers."""
    calls: list[int] = []
    original = PieceServer.request

    def counted(self: PieceServer, link: Link, request: Any, body: bytes) -> Any:
        calls.append(1)
        return original(self, link, request, body)

    monkeypatch.setattr(PieceServer, "request", counted)
    return calls


@arun
async def test_pipelined_requests_in_one_read_are_answered_in_one_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight PIECE requests in one segment: every one answered, in the order asked, with
    its piece's bytes, without the general path (one pass: ``PieceServer.quick``); a read
    that also asks for a piece we do not hold goes the general path whole (its 404 in
    place)."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(12 * 256 * 1024 - 777))
    data = path.read_bytes()
    general = count_general_requests(monkeypatch)
    async with seeded(path, 256 * 1024) as (port, manifest, _):
        asked = [5, 0, 11, 3, 3, 7, 1, 10]
        reader, writer = await ask_at_once(port, manifest, asked)
        answers = await read_answers(reader, manifest, asked)
        assert answers == [(200, data[i * 256 * 1024:(i + 1) * 256 * 1024]) for i in asked]
        assert not general
        writer.write(b"".join(sp.piece_request(manifest.id, i) for i in (2, 12, 4)))
        more = await read_answers(reader, manifest, [2, 12, 4])
        assert [status for status, _ in more] == [200, 404, 200]
        assert more[2][1] == data[4 * 256 * 1024:5 * 256 * 1024]
        assert len(general) == 3
        writer.close()


@arun
async def test_a_flooder_that_never_reads_is_cut_off_and_others_are_served(
        tmp_path: Path) -> None:
    """A client that pipelines a turn's worth of requests (the quick path) and one that
    pipelines more (the general path, in turns) and neither reads: each loses its
    connection to the write-stall deadline, while a client from another address is
    served in full meanwhile."""
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(16 * 256 * 1024))
    data = path.read_bytes()
    async with seeded(path, 256 * 1024) as (port, manifest, server):
        server.server.policy = dataclasses.replace(server.server.policy,
                                                   write_stall_timeout=0.5)
        floods = [list(range(16)) * (limits.REQUESTS_PER_TURN // 16),
                  list(range(16)) * (limits.REQUESTS_PER_TURN // 16 + 2)]
        flooders = [await ask_at_once(port, manifest, asked, source="127.0.0.2")
                    for asked in floods]
        await async_wait_for(lambda: server.uploads == 2, what="both flooders admitted")
        reader, writer = await ask_at_once(port, manifest, [0, 15, 8], source="127.0.0.3")
        answers = await read_answers(reader, manifest, [0, 15, 8])
        assert [body for _, body in answers] == [
            data[i * 256 * 1024:(i + 1) * 256 * 1024] for i in (0, 15, 8)]
        await async_wait_for(lambda: server.uploads == 1, timeout=20,
                             what="both flooders cut off by the write-stall deadline")
        for _, flood_writer in flooders:
            flood_writer.close()
        writer.close()
