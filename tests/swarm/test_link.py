"""Piece links over real sockets: answers in order, and the receive low-water mark.

While a piece's body arrives, the link sets ``SO_RCVLOWAT`` so that the kernel wakes the
downloader for runs of the body, not for every few packets; it must never ask for more
than the body still lacks (or the last bytes would never wake it) and must drop back to
one byte for the next answer's head.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from p2pshare import limits
from p2pshare.swarm.link import PeerLink

from ..aio import HOST, TEST_DEADLINE, arun
from ..helpers import async_wait_for

SWARM = "ab" * 32
BODY = bytes(range(256)) * 1024  # 256 KiB


def answer_head(length: int) -> bytes:
    return f"P2P-SWARM/1.0 200 OK\r\nContent-Length: {length}\r\n\r\n".encode()


def lowat(link: PeerLink) -> int:
    assert link.transport is not None
    sock = link.transport.get_extra_info("socket")
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))


@dataclass
class Peer:
    """A hand-driven piece server on the other end of ``link``: ``asked`` holds the
    requests it read; the test writes answers through ``writer``."""

    link: PeerLink
    asked: asyncio.Queue[bytes]
    writers: list[asyncio.StreamWriter]

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self.writers[0]


@asynccontextmanager
async def hand_peer() -> AsyncIterator[Peer]:
    asked: asyncio.Queue[bytes] = asyncio.Queue()
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while True:
                asked.put_nowait(await reader.readuntil(b"\r\n\r\n"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    server = await asyncio.start_server(serve, HOST, 0)
    link = await PeerLink.connect((HOST, server.sockets[0].getsockname()[1]))
    try:
        yield Peer(link, asked, writers)
    finally:
        link.close()
        server.close()
        for writer in writers:
            writer.close()


def run_on(loop: str, test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``test`` on asyncio's own loop or on uvloop (skipped if not installed: the swarm
    commands run on it when it is), under ``arun``'s deadline."""
    factory = asyncio.new_event_loop
    if loop == "uvloop":
        factory = pytest.importorskip("uvloop").new_event_loop

    async def bounded() -> None:
        async with asyncio.timeout(TEST_DEADLINE):
            await test()

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(bounded())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_low_water_mark_follows_the_body_and_drops_back_for_the_next_head(loop: str) -> None:
    run_on(loop, low_water_mark_follows_the_body)


async def low_water_mark_follows_the_body() -> None:
    async with hand_peer() as peer:
        link = peer.link
        link.request(SWARM, 0)
        link.request(SWARM, 1)
        await async_wait_for(lambda: peer.asked.qsize() == 2, what="both requests")
        server_side = peer.writer
        reading = asyncio.ensure_future(link.read_piece())
        cut = 1000
        server_side.write(answer_head(len(BODY)) + BODY[:cut])
        await async_wait_for(lambda: link.client.wanted == len(BODY) - cut and lowat(link) > 1,
                             what="the low-water mark raised for the body")
        # never above what the body lacks, nor above the cap or the rate's share
        assert 1 < lowat(link) <= min(len(BODY) - cut, limits.MAX_RCVLOWAT,
                                      int(limits.ASSUMED_RATE * limits.LOWAT_SECONDS))
        server_side.write(BODY[cut:] + answer_head(2) + b"ok")
        index, head, body = await reading
        assert (index, head.status, bytes(body)) == (0, 200, BODY)
        index, head, body = await link.read_piece()  # a 2-byte body: no wait for more
        assert (index, bytes(body)) == (1, b"ok")
        assert link.rate is not None
        reading = asyncio.ensure_future(link.read_piece())
        link.request(SWARM, 2)
        await async_wait_for(lambda: lowat(link) == 1, what="back to one byte for a head")
        reading.cancel()


@arun
async def test_a_peer_that_slows_down_is_still_seen_sending() -> None:
    """After a fast piece the mark is high; if the peer then trickles, the kernel holds its
    bytes below the mark and we are not woken. When the piece is late, the downloader drops
    the mark (``wake_for_every_byte``, which says it was raised: the silence is not proven)
    and the trickled bytes wake the reader at once. (Found in review: such a peer was
    dropped as silent.)"""
    async with hand_peer() as peer:
        link = peer.link
        link.request(SWARM, 0)
        link.request(SWARM, 1)
        await async_wait_for(lambda: peer.asked.qsize() == 2, what="both requests")
        big = b"x" * (4 * limits.MiB)
        peer.writer.write(answer_head(len(big)) + big)
        await link.read_piece()
        peer.writer.write(answer_head(len(big)) + b"y" * 1000)
        reading = asyncio.ensure_future(link.read_piece())
        await async_wait_for(lambda: lowat(link) > 1000, what="a high mark for piece 1")
        seen = link.last_byte
        peer.writer.write(b"y" * 1000)  # a trickle, far below the mark
        assert link.wake_for_every_byte()  # the downloader's move when the piece is late
        assert not link.wake_for_every_byte()  # now it is one byte
        link.snubbed = True  # as the downloader marks a late link
        reading.cancel()  # the read's deadline passed; the next read starts with mark 1
        reading = asyncio.ensure_future(link.read_piece())
        await async_wait_for(lambda: link.last_byte > seen, what="the trickle seen")
        assert lowat(link) == 1
        reading.cancel()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_read_past_its_deadline_is_cut_short_and_the_next_one_carries_on(loop: str) -> None:
    run_on(loop, a_read_past_its_deadline_is_cut_short)


async def a_read_past_its_deadline_is_cut_short() -> None:
    """``read_piece(deadline)`` raises TimeoutError once the deadline comes (or at once if
    it has passed) and loses nothing; with a later deadline, the next read carries on."""
    async with hand_peer() as peer:
        link = peer.link
        link.request(SWARM, 0)
        link.request(SWARM, 1)
        await async_wait_for(lambda: peer.asked.qsize() == 2, what="both requests")
        loop = asyncio.get_running_loop()
        peer.writer.write(answer_head(len(BODY)) + BODY[:1000])
        with pytest.raises(TimeoutError):
            await link.read_piece(loop.time() + 0.05)
        with pytest.raises(TimeoutError):
            await link.read_piece(loop.time() - 1)
        peer.writer.write(BODY[1000:] + answer_head(2))
        index, _, body = await link.read_piece(loop.time() + 60)
        assert index == 0 and body == BODY
        with pytest.raises(TimeoutError):  # the long deadline's timer does not delay it
            await link.read_piece(loop.time() + 0.05)
        peer.writer.write(b"ok")
        index, _, body = await link.read_piece(loop.time() + 60)
        assert index == 1 and body == b"ok"


@arun
async def test_a_link_reads_only_what_its_caller_wants() -> None:
    """Bodies arrive straight into the answer's buffer, and a link reads no further than
    its caller wants: while nobody reads, it holds at most ``MAX_HEAD`` bytes (and a
    scratch buffer's worth); once an answer is whole, nothing more until the next read.
    A peer that sends every answer at once cannot make the downloader hold them all: the
    rest waits in the kernel."""
    async with hand_peer() as peer:
        link = peer.link
        for index in range(3):
            link.request(SWARM, index)
        await async_wait_for(lambda: peer.asked.qsize() == 3, what="three requests")
        peer.writer.write((answer_head(len(BODY)) + BODY) * 3)
        transport = link.transport
        assert transport is not None
        await async_wait_for(lambda: not transport.is_reading(), what="reading held")
        assert limits.MAX_HEAD <= link.client.buffered < 2 * limits.MAX_HEAD
        for index in range(3):
            found = await link.read_piece()
            assert (found[0], bytes(found[2])) == (index, BODY)
            assert not transport.is_reading()  # until the caller wants more


def descriptors() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.mark.parametrize(("loop", "held"), [("asyncio", 1), ("uvloop", 2)])
def test_a_link_holds_a_second_descriptor_only_for_uvloops_stand_in_socket(
        loop: str, held: int) -> None:
    """asyncio's socket stand-in sets options on the socket itself: the link needs no
    socket of its own on a duplicate descriptor (uvloop's makes an object per call, so
    there it keeps one); either way every descriptor goes with the connection."""
    run_on(loop, lambda: descriptors_of_a_link(held))


async def descriptors_of_a_link(held: int) -> None:
    with socket.create_server((HOST, 0)) as listener:  # the kernel accepts: no fd here
        address = (HOST, listener.getsockname()[1])
        first = await PeerLink.connect(address)  # the loop's own descriptors made once
        first.close()
        await async_wait_for(lambda: first.client.closed, what="the first link closed")
        before = descriptors()
        link = await PeerLink.connect(address)
        assert descriptors() - before == held
        link.close()
        await async_wait_for(lambda: link.client.closed and descriptors() == before,
                             what="every descriptor of the link closed")
