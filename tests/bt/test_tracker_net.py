"""The tracker on real sockets (HTTP and UDP, port 0) with the announce client, and hostile
input: malformed queries and datagrams, forged connection ids, floods from one address."""

from __future__ import annotations

import asyncio
import random
import socket
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from p2pshare import limits
from p2pshare.bt.announce import announce, scrape
from p2pshare.bt.tracker import SwarmTable, TableLimits
from p2pshare.bt.tracker_server import BtTracker
from p2pshare.errors import LocalProtocolError, PeerGone
from p2pshare.net.udp import UdpServer
from p2pshare.protocol import bt_udp
from p2pshare.protocol.bt_tracker import (
    AnnounceEvent,
    AnnounceRequest,
    TrackerFailure,
    parse_announce_answer,
)
from p2pshare.web.server import HttpServer

from ..aio import arun
from ..helpers import DEADLINE, IPV6_LOOPBACK, async_wait_for, run_cli

H1 = bytes(range(20))
V2 = bytes(range(100, 132))  # a v2 info-hash: announced as its first 20 bytes
WAIT = 3.0  # seconds a UDP test waits for an answer that must come


@dataclass
class Tracker:
    service: BtTracker
    http: str
    udp: str
    udp_port: int
    udp_server: UdpServer


@asynccontextmanager
async def tracker(host: str | None = "127.0.0.1", **table: float) -> AsyncIterator[Tracker]:
    """Both front ends on ``host`` (None: every address, dual-stack; reached at 127.0.0.1)."""
    service = BtTracker(SwarmTable(TableLimits(**table), random.Random(5)))  # type: ignore[arg-type]
    http = HttpServer("tracker")
    service.add_routes(http)
    udp = UdpServer(service.datagram, "tracker")
    _, http_port = await http.start(host, 0)
    _, udp_port = await udp.start(host, 0)
    host = host or "127.0.0.1"
    where = f"[{host}]" if ":" in host else host
    try:
        yield Tracker(service, f"http://{where}:{http_port}/announce",
                      f"udp://{where}:{udp_port}/announce", udp_port, udp)
    finally:
        await http.aclose()
        await udp.aclose()


def pid(n: int) -> bytes:
    return f"-PS0001-{n:012d}".encode()


async def join(url: str, port: int, left: int = 10, info_hash: bytes = H1,
               **kw: object) -> list[tuple[str, int]]:
    result = await announce(url, info_hash, pid(port), port, kw.pop("event", "started"),  # type: ignore[arg-type]
                            0, 0, left, timeout=WAIT, **kw)  # type: ignore[arg-type]
    return result.peers


@arun
async def test_http_and_udp_peers_meet_in_one_swarm() -> None:
    async with tracker() as t:
        assert await join(t.http, 6001) == []
        assert await join(t.udp, 6002) == [("127.0.0.1", 6001)]
        assert sorted(await join(t.http, 6003, left=0)) == [("127.0.0.1", 6001),
                                                            ("127.0.0.1", 6002)]
        stats = await scrape(t.http, [H1], timeout=WAIT)
        assert (stats[H1].complete, stats[H1].incomplete) == (1, 2)
        assert (await scrape(t.udp, [H1, b"\x09" * 20], timeout=WAIT))[b"\x09" * 20].complete == 0
        await join(t.udp, 6002, event=AnnounceEvent.STOPPED)
        assert await join(t.http, 6003, left=0) == [("127.0.0.1", 6001)]


@arun
async def test_a_v2_torrent_is_announced_under_its_truncated_hash() -> None:
    async with tracker() as t:
        await join(t.udp, 6001, info_hash=V2)
        assert await join(t.http, 6002, info_hash=V2[:20]) == [("127.0.0.1", 6001)]


@pytest.mark.skipif(not IPV6_LOOPBACK, reason="no IPv6 loopback")
@arun
async def test_ipv6_peers_over_http_peers6_and_udp_18_byte_entries() -> None:
    async with tracker("::1") as t:
        await join(t.http, 6001)
        assert await join(t.udp, 6002) == [("::1", 6001)]
        assert await join(t.http, 6003) != []


@arun
async def test_ipv4_clients_of_a_dual_stack_tracker_are_ipv4_peers() -> None:
    async with tracker(None) as t:  # IPv4 clients arrive as ::ffff:127.0.0.1
        await join(t.http, 6001)
        assert await join(t.udp, 6002) == [("127.0.0.1", 6001)]  # 6-byte entries
        assert sorted(await join(t.http, 6003)) == [("127.0.0.1", 6001), ("127.0.0.1", 6002)]
        await join(t.udp, 6001, event=AnnounceEvent.STOPPED)  # the same source, either way
        assert t.service.table.holding("127.0.0.1") == 2


@arun
async def test_the_client_refuses_what_it_cannot_ask() -> None:
    for url in ("https://127.0.0.1/announce", "udp://127.0.0.1/announce", "http:///x",
                "udp://127.0.0.1:99999"):
        with pytest.raises(TrackerFailure):
            await announce(url, H1, pid(1), 1, "", 0, 0, 0, timeout=WAIT)
    with pytest.raises(LocalProtocolError):
        await announce("udp://127.0.0.1:1", H1, pid(1), 1, "begun", 0, 0, 0, timeout=WAIT)


@arun
async def test_numwant_is_capped_over_the_wire() -> None:
    async with tracker(numwant_max=40, burst=10**6) as t:
        for port in range(7000, 7100):
            await join(t.udp, port, numwant=0)
        assert len(await join(t.http, 6000, numwant=500)) == 40
        assert len(await join(t.udp, 6001, numwant=500)) == 40


@arun
async def test_malformed_http_queries_get_a_failure_reason() -> None:
    async with tracker() as t:
        good = ("info_hash=" + urllib.parse.quote(H1) + "&peer_id=" + "x" * 20
                + "&port=6881&left=1")
        for query in ("", "info_hash=abc", good.replace("6881", "99999"),
                      good + "&info_hash=" + urllib.parse.quote(H1), good + "&event=nope",
                      good + "&numwant=1e9", good.replace("x" * 20, "y" * 21)):
            body = await http_get(t.http, query)
            with pytest.raises(TrackerFailure):
                parse_announce_answer(body)
        assert parse_announce_answer(await http_get(t.http, good)).interval > 0
        status = await http_get(t.http, good + "&bad=%zz", status_only=True)
        assert status.startswith(b"HTTP/1.1 400")  # the HTTP layer's, before the tracker


async def http_get(url: str, query: str, status_only: bool = False) -> bytes:
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET {parts.path}?{query} HTTP/1.0\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    return data.split(b"\r\n", 1)[0] if status_only else data.split(b"\r\n\r\n", 1)[1]


@asynccontextmanager
async def udp_socket(source: str = "127.0.0.1") -> AsyncIterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


async def ask(sock: socket.socket, port: int, data: bytes, wait: float = WAIT) -> bytes:
    loop = asyncio.get_running_loop()
    await loop.sock_sendto(sock, data, ("127.0.0.1", port))
    answer, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), wait)
    return answer


def request(port: int) -> AnnounceRequest:
    return AnnounceRequest(H1, pid(port), port, left=5)


@arun
async def test_udp_connection_ids_belong_to_their_source_address() -> None:
    async with tracker() as t, udp_socket() as mine, udp_socket("127.0.0.2") as other:
        cid = bt_udp.parse_udp_answer(await ask(mine, t.udp_port, bt_udp.encode_udp_connect(1)),
                                      1, bt_udp.UdpAction.CONNECT)
        assert isinstance(cid, int)
        ok = await ask(mine, t.udp_port, bt_udp.encode_udp_announce(cid, 2, request(1)))
        assert bt_udp.parse_udp_answer(ok, 2, bt_udp.UdpAction.ANNOUNCE)
        # The same id from another address, and a made-up one, get an error packet.
        for sock, connection in ((other, cid), (mine, cid ^ 1)):
            answer = await ask(sock, t.udp_port, bt_udp.encode_udp_announce(connection, 3,
                                                                              request(2)))
            with pytest.raises(TrackerFailure, match="Connection ID"):
                bt_udp.parse_udp_answer(answer, 3, bt_udp.UdpAction.ANNOUNCE)
        assert t.service.table.peers == 1


@arun
async def test_malformed_datagrams_are_dropped_and_the_tracker_goes_on() -> None:
    async with tracker() as t, udp_socket() as sock:
        loop = asyncio.get_running_loop()
        rng = random.Random(7)
        junk = [b"", b"\x00" * 15, bt_udp.encode_udp_connect(1)[:8] + b"\x00\x00\x00\x09" * 2,
                *(rng.randbytes(rng.randrange(200)) for _ in range(200)),
                b"\x00" * (limits.MAX_UDP_DATAGRAM + 1)]
        for data in junk:
            await loop.sock_sendto(sock, data, ("127.0.0.1", t.udp_port))
        assert await join(t.udp, 6001) == []  # still answering
        assert t.service.table.peers == 1


@arun
async def test_a_udp_flood_from_one_address_is_dropped_not_answered() -> None:
    async with tracker() as t, udp_socket("127.0.0.3") as flood:
        loop = asyncio.get_running_loop()
        for n in range(limits.UDP_DATAGRAM_BURST + 200):
            await loop.sock_sendto(flood, bt_udp.encode_udp_connect(n), ("127.0.0.1", t.udp_port))
            if n % 50 == 49:  # the kernel queues only a few hundred: let the server read
                def read_past(sent: int = n) -> bool:
                    return t.udp_server.received > sent

                await async_wait_for(read_past, what="the flood")
        assert t.udp_server.dropped >= 100
        await join(t.udp, 6001)  # another address is still served


@arun
async def test_a_flood_of_announces_from_one_address_keeps_others_peers() -> None:
    async with tracker(per_source=20, max_swarm_peers=50, burst=10**6) as t:
        await join(t.udp, 6001)  # 127.0.0.1's peer
        async with udp_socket("127.0.0.4") as flood:
            cid = bt_udp.parse_udp_answer(
                await ask(flood, t.udp_port, bt_udp.encode_udp_connect(1)), 1,
                bt_udp.UdpAction.CONNECT)
            assert isinstance(cid, int)
            for port in range(10_000, 10_300):
                await ask(flood, t.udp_port, bt_udp.encode_udp_announce(cid, port, request(port)))
        assert t.service.table.holding("127.0.0.4") == 20
        peers = await join(t.http, 6002, numwant=200)
        assert ("127.0.0.1", 6001) in peers and len(peers) == 21


@arun
async def test_announce_rate_per_address_gives_a_failure_reason() -> None:
    async with tracker(burst=5, rate=0.001) as t:
        for port in range(5):
            await join(t.http, 6000 + port)
        with pytest.raises(TrackerFailure, match="slow down"):
            await join(t.udp, 6100)


@arun
async def test_a_silent_or_closed_udp_tracker_ends_in_peer_gone_by_the_deadline() -> None:
    silent = UdpServer(lambda data, host, port: None)
    _, port = await silent.start("127.0.0.1", 0)
    try:
        with pytest.raises(PeerGone):
            await announce(f"udp://127.0.0.1:{port}", H1, pid(1), 1, "", 0, 0, 0, timeout=0.3)
    finally:
        await silent.aclose()
    with pytest.raises(PeerGone):  # nothing there now: ICMP says so, or the deadline
        await announce(f"udp://127.0.0.1:{port}", H1, pid(1), 1, "", 0, 0, 0, timeout=2)
    with pytest.raises(PeerGone):
        await announce(f"http://127.0.0.1:{port}/announce", H1, pid(1), 1, "", 0, 0, 0,
                       timeout=2)


@arun
async def test_the_client_reads_a_tracker_answer_whose_keys_are_not_sorted() -> None:
    """Trackers of the TBDev family (PHP) write ``interval`` and ``min interval`` before
    ``complete``; libtorrent and Transmission read such answers, so must we (tolerant in
    what we accept: nobody hashes a tracker's answer)."""
    body = (b"d8:intervali1800e12:min intervali900e8:completei1e10:incompletei0e"
            b"5:peers6:\x7f\x00\x00\x01\x1a\xe1e")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await announce(f"http://127.0.0.1:{port}/announce", H1, pid(1), 1,
                                "started", 0, 0, 10, timeout=WAIT)
    finally:
        server.close()
        await server.wait_closed()
    assert (result.interval, result.min_interval, result.peers) == (
        1800, 900, [("127.0.0.1", 6881)])


def test_a_udp_port_in_use_is_exit_4() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        done = run_cli(["server", "--listen", "127.0.0.1", "--port", "0",
                        "--udp-port", str(taken.getsockname()[1])], timeout=DEADLINE)
    assert done.returncode == 4, done.stderr
    assert "cannot serve the UDP tracker" in done.stderr


@arun
async def test_the_client_reuses_a_connection_id_and_connects_again_when_refused() -> None:
    trackers, actions = [BtTracker()], []

    def handler(data: bytes, host: str, port: int) -> bytes | None:
        actions.append(int.from_bytes(data[8:12]))
        return trackers[-1].datagram(data, host, port)

    server = UdpServer(handler)
    _, port = await server.start("127.0.0.1", 0)
    try:
        url = f"udp://127.0.0.1:{port}"
        await announce(url, H1, pid(1), 1, "started", 0, 0, 5, timeout=WAIT)
        await announce(url, V2, pid(1), 1, "started", 0, 0, 5, timeout=WAIT)
        assert actions == [0, 1, 1]  # one connect for both (BEP 15: an id lasts a minute)
        trackers.append(BtTracker())  # "restarted": another secret, our id is refused
        assert await join(url, 2) == []
        assert actions[3:] == [1, 0, 1]  # refused, connected again, announced
    finally:
        await server.aclose()


@arun
async def test_an_announce_cancelled_at_any_step_ends_cancelled() -> None:
    """A cancel that lands at any step of an announce, however far its exchange got, ends
    it cancelled. A finished fetch cancels its announcer; on Python 3.11
    ``asyncio.wait_for`` returned the result of a step that ended as the cancel came, and
    the fetch then announced for ever instead of ending (tests/bt/test_sessions.py's magnet
    fetch through our UDP tracker hung about one run in five)."""
    async with tracker() as t:
        for url in (t.udp, t.http):
            for steps in range(1000):  # until the announce ends before the cancel: all tried
                task = asyncio.create_task(join(url, 6001))
                for _ in range(steps):
                    await asyncio.sleep(0)  # one turn of the loop: the cancel lands later
                if task.done():
                    assert await task == []
                    break
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:
                raise AssertionError(f"{url}: an announce took over 1000 turns of the loop")
