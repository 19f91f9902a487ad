"""Sybil members of a swarm: fake peers that register with the tracker, accept a
downloader's connections and trickle their answers.

Each member listens on its own socket on one of the attacker's addresses (127.0.0.2, .3 …:
any 127.x address works on Linux loopback) and registers as a real ``SwarmPeer`` on that
host would, from a tracker connection bound to that same address (so a tracker that
records a member's source address sees the attacker's host too): ANNOUNCE with its
listening address, then HAVE of every piece. Whatever it is asked, it answers ``200`` with
a piece-sized body, one byte every ``every`` seconds, for as long as the connection lasts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from p2pshare import limits
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.link import PipelinedStream
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.pieces import full

TRACKER_HOST = "127.0.0.1"


@dataclass
class SybilStats:
    """What the members saw: their addresses, and the victim's connections to them."""

    addresses: list[tuple[str, int]] = field(default_factory=list)
    accepted: int = 0  # connections the victim made to any member
    open_now: int = 0
    most_open: int = 0  # most connections open to members at once
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def opened(self) -> None:
        self.accepted += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)


async def tracker_from(source: str, port: int) -> TrackerClient:
    """A tracker connection to 127.0.0.1:``port`` made from the address ``source``."""
    reader, writer = await asyncio.open_connection(TRACKER_HOST, port, local_addr=(source, 0),
                                                   limit=limits.RECV_CHUNK)
    return TrackerClient(PipelinedStream((TRACKER_HOST, port), reader, writer,
                                         limits.MAX_TRACKER_BODY))


@asynccontextmanager
async def sybil_members(tracker_port: int, manifest: Manifest, hosts: Sequence[str],
                        count: int, every: float = 0.2) -> AsyncIterator[SybilStats]:
    """``count`` tricklers of ``manifest``'s swarm, spread over ``hosts`` in turn."""
    stats = SybilStats()
    answer = (f"P2P-SWARM/1.0 200 OK\r\nContent-Length: {manifest.piece_size}\r\n\r\n"
              .encode() + bytes(manifest.piece_size))

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        stats.tasks.add(task)
        stats.opened()
        try:
            await reader.readuntil(b"\r\n\r\n")
            for at in range(len(answer)):
                writer.write(answer[at:at + 1])
                await writer.drain()
                if await _closed_within(reader, every):  # paced by the wait for a close
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            stats.open_now -= 1
            stats.tasks.discard(task)
            writer.close()

    servers: list[asyncio.Server] = []
    trackers: list[TrackerClient] = []
    try:
        for i in range(count):
            host = hosts[i % len(hosts)]
            server = await asyncio.start_server(trickle, host, 0)
            servers.append(server)
            address = (host, int(server.sockets[0].getsockname()[1]))
            tracker = await tracker_from(host, tracker_port)
            trackers.append(tracker)
            await tracker.announce(manifest, *address)
            await tracker.have(manifest.id, full(manifest.count))
            stats.addresses.append(address)
        yield stats
    finally:
        for tracker in trackers:
            await tracker.aclose()
        for server in servers:
            server.close()
        for task in list(stats.tasks):
            task.cancel()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the other side closed within ``seconds`` (more requests are dropped)."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(limits.RECV_CHUNK):
                pass
            return True
    except TimeoutError:
        return False
