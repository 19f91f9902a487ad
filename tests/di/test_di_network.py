"""P2P-DI over real sockets on 127.0.0.1: the handout's scenario, TTLs, cookies, fallback."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from p2pshare.dipeer.client import get_rfc
from p2pshare.errors import IntegrityError, RemoteProtocolError
from p2pshare.protocol import di
from p2pshare.registry import wire
from p2pshare.registry.client import RSClient
from p2pshare.registry.store import Registry

from ..aio import HOST, arun
from ..helpers import async_wait_for
from .clock import FakeClock
from .net import content, di_net, fake_peer

V = b"P2P-DI/1.0"


@arun
async def test_the_handouts_scenario(tmp_path: Path) -> None:
    """A and B register; A gets the peer list and downloads from B; B leaves; nobody left."""
    async with di_net(tmp_path) as net:
        b = await net.peer("b", {123: 3_000, 2345: 70_000})
        a = await net.peer("a")
        assert await a.pquery() == [b.me]
        result = await a.get(2345)
        assert result.fetched is not None
        assert result.fetched.path.read_bytes() == content(2345, 70_000)
        assert a.index.has_local(2345)
        await b.leave()
        reply, peers = await a.rs.pquery()
        assert peers.items == () and reply.status == 404
        assert reply.response.reason == di.NO_ACTIVE_PEERS
        shown = "\n".join(net.rs_log)
        for start in ("REGISTER PEER P2P-DI/1.0", "PQUERY ALL P2P-DI/1.0", "LEAVE PEER P2P-DI/1.0",
                      "P2P-DI/1.0 404 No Active Peers"):
            assert start in shown


@arun
async def test_an_rfc_index_holds_local_and_remote_records(tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        b = await net.peer("b", {1: 100})
        c = await net.peer("c", {2: 100})
        a = await net.peer("a", {3: 100})
        await a.rfc_query(b.me)
        await c.rfc_query(a.me)  # c learns a's local 3 and a's remote 1
        rows = {(r.rfc, r.port) for r in c.index.records()}
        assert rows == {(2, c.me.port), (3, a.me.port), (1, b.me.port)}


@arun
async def test_ttl_expiry_with_an_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    async with di_net(tmp_path, Registry(clock=clock, wall=clock.wall)) as net:
        a = await net.peer("a")
        b = await net.peer("b")
        b_cookie = b.rs.cookie
        assert b_cookie is not None
        clock.advance(7199)
        assert await a.pquery() == [b.me]  # this also resets a's TTL, not b's
        clock.advance(1)
        assert await a.pquery() == []  # b's TTL reached 0
        keep = await net.raw(net.rs_port, b"KEEPALIVE PEER P2P-DI/1.0\r\nHost: 127.0.0.1\r\n"
                             b"Cookie: %d\r\n\r\n" % b_cookie)
        assert keep == b"P2P-DI/1.0 409 Not Active\r\nContent-Length: 0\r\n\r\n"
        clock.advance(7200)  # now a has expired too: its KeepAlive gets 409, so it re-registers
        assert (await a.keep_alive()).status == 200
        view = net.rs.registry.view(a.rs.cookie or 0)
        assert view is not None and view.active and view.registrations == 2


@arun
async def test_a_peer_keeps_its_cookie_when_it_registers_again(tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        a = await net.peer("a")
        first = a.rs.cookie
        await a.leave()
        assert await net.peer("b") and (await a.register()).status == 200
        assert a.rs.cookie == first
        view = net.rs.registry.view(first or 0)
        assert view is not None and view.registrations == 2 and view.active
        cookies = [v.cookie for v in net.rs.registry.views()]
        assert len(cookies) == len(set(cookies)) == 2


@arun
async def test_a_cookie_the_rs_does_not_know_is_replaced(tmp_path: Path) -> None:
    """As after an RS restart: the peer's Register with a stale cookie gets 409, then a new one."""
    async with di_net(tmp_path) as net:
        a = await net.peer("a", register=False)
        a.rs.cookie = 999
        assert (await a.register()).status == 200
        assert a.rs.cookie not in (None, 999)
        assert net.rs.registry.view(a.rs.cookie or 0) is not None


@arun
async def test_the_rs_refuses_bad_requests_and_carries_on(tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        port = net.rs_port
        for request, reply in [
            (b"PQUERY ALL P2P-DI/1.0\r\nHost: x\r\nCookie: 999\r\n\r\n",
             b"P2P-DI/1.0 409 Unknown Cookie\r\nContent-Length: 0\r\n\r\n"),
            (b"LEAVE PEER P2P-DI/1.0\r\nHost: x\r\nCookie: 999\r\n\r\n",
             b"P2P-DI/1.0 409 Unknown Cookie\r\nContent-Length: 0\r\n\r\n"),
            (b"PQUERY ALL P2P-DI/9.9\r\nHost: x\r\n\r\n",
             b"P2P-DI/1.0 505 P2P-DI Version Not Supported\r\nContent-Length: 0\r\n\r\n"),
            (b"HELLO WORLD P2P-DI/1.0\r\nHost: x\r\n\r\n",
             b"P2P-DI/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            (b"GET RFC 1 P2P-DI/1.0\r\nHost: x\r\n\r\n",
             b"P2P-DI/1.0 400 Not An RS Request\r\nContent-Length: 0\r\n\r\n"),
            (b"\x00\x01garbage\r\n\r\n",
             b"P2P-DI/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            (b"PQUERY ALL P2P-DI/1.0\r\nHost: x\r\n\r\n",
             b"P2P-DI/1.0 404 No Active Peers\r\nContent-Length: 0\r\n\r\n"),
            (b"", b""),  # connect and close at once
        ]:
            assert await net.raw(port, request) == reply, request
        a = await net.peer("a")
        assert a.rs.cookie is not None


@arun
async def test_get_falls_back_to_a_second_holder_when_the_first_is_gone(tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        c = await net.peer("c", {7: 20_000})
        b = await net.peer("b", {7: 20_000})  # newer: PQuery lists it first
        a = await net.peer("a")
        for source in await a.pquery():
            await a.rfc_query(source)
        assert [h.port for h in a.index.holders(7)] == [b.me.port, c.me.port]
        await b.server.aclose()  # b vanishes without a Leave: the RS still lists it
        result = await a.get(7)
        assert result.fetched is not None
        assert result.fetched.path.read_bytes() == content(7, 20_000)
        assert f"from 127.0.0.1:{b.me.port}: PeerGone" in result.steps[0]
        assert f"from 127.0.0.1:{c.me.port}: 20000 bytes" in result.steps[-1]


@arun
async def test_get_falls_back_when_a_holder_no_longer_has_the_file(tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        await net.peer("c", {7: 500})
        b = await net.peer("b", {7: 500})  # newer: PQuery lists it first
        a = await net.peer("a")
        for source in await a.pquery():
            await a.rfc_query(source)
        (b.folder / "rfc7.txt").unlink()
        result = await a.get(7)
        assert result.fetched is not None
        assert "404 Not Found" in result.steps[0]
        assert b.me.port not in [h.port for h in a.index.holders(7)]  # dropped


@arun
async def test_get_reports_failure_when_no_active_peer_has_the_rfc(tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        await net.peer("b", {1: 100})
        a = await net.peer("a")
        result = await a.get(2)
        assert result.fetched is None and len(result.active) == 1
        assert not (a.folder / "rfc2.txt").exists()


MALFORMED_INDEX = (b"RFC 5 Good Title 127.0.0.1 %d 7200\r\n"
                   b"RFC five Bad Number 127.0.0.1 1 7200\r\n"
                   b"RFC 6 Missing Fields\r\n"
                   b"RFC 7 Bad \xff\xfe Bytes 127.0.0.1 1 7200\r\n"
                   b"RFC 8 Port Too Big 127.0.0.1 99999 7200\r\n"
                   b"\r\n")


@arun
async def test_a_malformed_index_line_does_not_crash_a_peer(tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        c = await net.peer("c", {5: 1234})
        body = MALFORMED_INDEX % c.me.port
        reply = b"P2P-DI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        async with fake_peer(reply) as port:
            a = await net.peer("a")
            merged = await a.rfc_query(di.PeerAddr(HOST, port))
            assert merged.added == 1
            assert [(h.rfc, h.port) for h in a.index.holders(5)] == [(5, c.me.port)]
            result = await a.get(5)
            assert result.fetched is not None and result.fetched.size == 1234


@arun
async def test_broken_peers_are_skipped_by_the_download_algorithm(tmp_path: Path) -> None:
    """Garbage, a wrong version, a short body: each costs one attempt, never the peer."""
    replies = [b"\x00\xffnot a protocol at all\r\n\r\n",
               b"P2P-CI/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
               b"P2P-DI/1.0 200 OK\r\nContent-Length: 1000\r\n\r\nRFC 9 T 127.0.0.1 1 1"]
    async with di_net(tmp_path) as net:
        async with fake_peer(replies[0]) as p1, fake_peer(replies[1]) as p2, \
                fake_peer(replies[2]) as p3:
            await net.peer("c", {9: 999})
            for port in (p3, p2, p1):  # the fakes register last, so PQuery lists them first
                client = RSClient(HOST, net.rs_port)
                assert (await client.register(di.PeerAddr(HOST, port))).status == 200
            a = await net.peer("a")
            result = await a.get(9)
            assert result.fetched is not None and result.fetched.size == 999
            assert len(result.steps) == 5, result.steps  # 3 broken RFCQuery, c's, the GetRFC
            assert all(f"RFCQuery 127.0.0.1:{p}: " in s
                       for p, s in zip((p1, p2, p3), result.steps, strict=False))


@arun
async def test_a_short_body_leaves_no_file_behind(tmp_path: Path) -> None:
    reply = b"P2P-DI/1.0 200 OK\r\nContent-Length: 1000\r\n\r\nonly this much"
    folder = tmp_path / "a"
    folder.mkdir()
    async with fake_peer(reply) as port:
        with pytest.raises(IntegrityError):
            await get_rfc(di.PeerAddr(HOST, port), 5, folder)
    assert os.listdir(folder) == []


@arun
async def test_the_rfc_server_sends_exact_bytes_and_only_files_in_its_folder(
        tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        b = await net.peer("b", {1: 4321})
        outside = tmp_path / "secret.txt"
        outside.write_bytes(b"secret")
        (b.folder / "rfc2.txt").symlink_to(outside)
        port = b.me.port
        got = await net.raw(port, b"GET RFC 1 P2P-DI/1.0\r\nHost: b\r\n\r\n")
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"P2P-DI/1.0 200 OK\r\nDate: ")
        assert b"\r\nContent-Length: 4321\r\nContent-Type: text/plain" in head
        assert body == content(1, 4321)
        not_found = b"P2P-DI/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        assert await net.raw(port, b"GET RFC 2 P2P-DI/1.0\r\nHost: b\r\n\r\n") == not_found
        assert await net.raw(port, b"GET RFC 3 P2P-DI/1.0\r\nHost: b\r\n\r\n") == not_found
        assert (await net.raw(port, b"PQUERY ALL P2P-DI/1.0\r\nHost: b\r\n\r\n")).startswith(
            b"P2P-DI/1.0 400 Not A Peer Request\r\n")
        assert (await net.raw(port, b"GET RFC-INDEX P2P-DI/2.0\r\nHost: b\r\n\r\n")) \
            .startswith(b"P2P-DI/1.0 505 ")


@arun
async def test_keepalive_keeps_a_peer_active_past_its_ttl(tmp_path: Path) -> None:
    async with di_net(tmp_path, Registry(ttl=1.5)) as net:
        a = await net.peer("a")
        assert a.rs.ttl == 2  # the RS states whole seconds, rounded up
        async with asyncio.TaskGroup() as tg:
            keeper = tg.create_task(a.stay_registered())
            await async_wait_for(lambda: sum("KEEPALIVE" in m for m in net.rs_log) >= 3,
                                 what="three KeepAlives")
            keeper.cancel()
        view = net.rs.registry.view(a.rs.cookie or 0)
        assert view is not None and view.active


@arun
async def test_a_reply_without_content_length_is_read_until_close_but_bounded() -> None:
    reply = b"P2P-DI/1.0 200 OK\r\n\r\n" + b"peer 1\r\n" * 1000
    async with fake_peer(reply) as port:
        async with wire.connect(HOST, port) as stream:
            await wire.request(stream, di.RFCQuery(HOST), None)
            assert len(await wire.read_body(stream, limit=8000)) == 8000
        async with wire.connect(HOST, port) as stream:
            await wire.request(stream, di.RFCQuery(HOST), None)
            with pytest.raises(RemoteProtocolError):
                await wire.read_body(stream, limit=7999)
