"""P2P-DI under a hostile host: registration floods, long peer lists, stolen addresses, and
huge RFC indexes (docs/p2p-di.md#rs-budgets, #pquery-paging, #rs-address, #peer-budgets).

Strategy: the attacker speaks from 127.0.0.2 (and .3, .4), the victims from 127.0.0.1, on
real sockets to a real RS and real peers. Each test asserts the victims' outcome (they
register, list, download) and the budgets (records held per source and in all, lines per
reply, records in an index), never a time.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.cli.exits import Exit
from p2pshare.errors import RemoteProtocolError, Status
from p2pshare.protocol import Data, EndOfMessage, Response, di
from p2pshare.registry.client import RSClient
from p2pshare.registry.store import Budgets, Registry

from ..aio import HOST, Raw, arun, arun_steady
from ..di.net import content, di_net, fake_peer
from ..helpers import run_cli
from ..protocol.test_di import feed, merged

ATTACKER = "127.0.0.2"


async def rs_from(source: str, port: int, msg: di.DIRequest) -> tuple[Response, bytes]:
    """``msg`` to the RS at ``port`` from the address ``source``; its reply and body."""
    conn = di.client_connection()
    raw = await Raw.connect(port, source=source)
    try:
        await raw.send(conn.send_all(di.to_event(msg), EndOfMessage()))
        events = merged(feed(conn, await raw.finish()))
    finally:
        await raw.close()
    head = events[0]
    assert isinstance(head, Response), events
    return head, events[1].data if isinstance(events[1], Data) else b""


async def flood(port: int, source: str, count: int, first_port: int = 1
                ) -> list[Response]:
    """``count`` new peers registered from ``source``, 128 at a time; the replies."""
    replies: list[Response] = []
    for start in range(0, count, 128):
        batch = range(start, min(count, start + 128))
        got = await asyncio.gather(*(rs_from(source, port, di.Register(
            f"fake{n}.example", first_port + n)) for n in batch))
        replies += [head for head, _body in got]
    return replies


def statuses(replies: list[Response]) -> dict[tuple[int, str], int]:
    counts: dict[tuple[int, str], int] = {}
    for head in replies:
        key = (head.status, head.reason)
        counts[key] = counts.get(key, 0) + 1
    return counts


# ----------------------------------------------------------------------------- floods
@arun
async def test_a_registration_flood_stops_at_its_budget_and_the_victim_is_served(
        tmp_path: Path) -> None:
    budget = limits.DI_MAX_PEERS_PER_SOURCE
    async with di_net(tmp_path) as net:
        net.rs.trace = None  # a thousand messages printed would be the slowest part
        replies = await flood(net.rs_port, ATTACKER, budget + 50)
        assert statuses(replies) == {(200, "OK"): budget, (503, di.SOURCE_FULL): 50}
        registry = net.rs.registry
        assert registry.held(ATTACKER) == budget and registry.held() == budget
        # The victims, from 127.0.0.1: a holder registers, lists, and is listed.
        holder = await net.peer("holder", {42: 3000})
        assert holder.rs.registered
        _reply, page = await holder.rs.pquery()
        assert len(page.items) == budget - 1 and page.cut == 0  # a page: the RS's cap
        _reply, everyone = await RSClient(HOST, net.rs_port).pquery_all()
        assert holder.me in everyone.items and len(everyone.items) == budget + 1
        # ... and a downloader that is not registered (di-get) gets the file.
        getter = await net.peer("getter", register=False)
        result = await getter.get(42)
        assert result.fetched is not None, result.steps
        assert result.fetched.path.read_bytes() == content(42, 3000)
        assert registry.held(ATTACKER) == budget  # still within its budget


@arun
async def test_a_full_rs_refuses_new_peers_keeps_serving_and_makes_room_from_idle_ones(
        tmp_path: Path) -> None:
    registry = Registry(budgets=Budgets(max_peers=12, max_per_source=4))
    async with di_net(tmp_path, registry) as net:
        port = net.rs_port
        got: list[Response] = []
        for n, source in enumerate(("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")):
            got += await flood(port, source, 6, first_port=100 * n + 1)
        assert statuses(got) == {(200, "OK"): 12, (503, di.SOURCE_FULL): 6,
                                 (503, di.RS_FULL): 6}
        assert registry.held() == 12 and all(
            registry.held(f"127.0.0.{n}") <= 4 for n in range(2, 6))
        victim = RSClient(HOST, port)
        reply = await victim.register(di.PeerAddr(HOST, 5000))
        assert (reply.status, reply.response.reason) == (503, di.RS_FULL)
        _reply, page = await victim.pquery()  # the RS still answers
        assert len(page.items) == 12
        # One fake peer leaves: its record makes room for the victim, the RS stays full.
        cookie = di.parse_registered(got[0])[0]
        head, _ = await rs_from("127.0.0.2", port, di.Leave("fake0.example", cookie))
        assert head.status == Status.OK
        assert (await victim.register(di.PeerAddr(HOST, 5000))).status == Status.OK
        assert registry.held() == 12


# ----------------------------------------------------------------------------- PQuery
@arun
async def test_pquery_replies_are_bounded_and_paging_returns_everyone(tmp_path: Path) -> None:
    listed = 16
    registry = Registry(budgets=Budgets(listed=listed))
    async with di_net(tmp_path, registry) as net:
        await flood(net.rs_port, ATTACKER, 100)
        victim = await net.peer("victim")
        head, body = await rs_from(HOST, net.rs_port, di.PQuery("observer"))
        assert body.count(b"\n") == listed and di.next_offset(head) == listed
        assert body.startswith(victim.me.to_line())  # newest first
        _reply, everyone = await RSClient(HOST, net.rs_port).pquery_all()
        assert len(everyone.items) == len(set(everyone.items)) == 101
        # the command, in another process: every peer with --all, a note without it
        args = ["di-peers", "--rs", f"{HOST}:{net.rs_port}", "--json"]
        done = await asyncio.to_thread(run_cli, [*args, "--all"])
        assert len(json.loads(done.stdout)) == 101, done.stderr
        done = await asyncio.to_thread(run_cli, args)
        assert len(json.loads(done.stdout)) == listed
        assert f"more active peers from offset {listed}" in done.stderr


@arun
async def test_a_client_reads_at_most_a_page_of_a_hostile_rs_and_says_so(
        tmp_path: Path) -> None:
    lines = b"".join(b"h%d.example %d\r\n" % (n, n % 60_000 + 1) for n in range(5000))
    reply = b"P2P-DI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(lines), lines)
    async with fake_peer(reply, ATTACKER) as port:
        _reply, page = await RSClient(ATTACKER, port).pquery()
        assert len(page.items) == limits.DI_MAX_PEERS_LISTED
        assert page.cut == 5000 - limits.DI_MAX_PEERS_LISTED
        done = await asyncio.to_thread(run_cli, ["di-peers", "--rs", f"{ATTACKER}:{port}"])
        assert "list cut: 3976 line(s)" in done.stderr
    huge = b"P2P-DI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % (
        limits.DI_MAX_PEER_LIST_BODY + 1)
    async with fake_peer(huge + b"x" * 1000, ATTACKER) as port:
        done = await asyncio.to_thread(run_cli, ["di-peers", "--rs", f"{ATTACKER}:{port}"])
        assert done.returncode == Exit.NETWORK and str(limits.DI_MAX_PEER_LIST_BODY) in done.stderr


# ----------------------------------------------------------------------------- addresses
@arun
async def test_another_host_cannot_take_a_live_peers_address(tmp_path: Path) -> None:
    async with di_net(tmp_path) as net:
        victim = await net.peer("victim", {7: 700})
        port, addr = net.rs_port, victim.me
        head, _ = await rs_from(ATTACKER, port, di.Register(addr.host, addr.port))
        assert (head.status, head.reason) == (409, di.ADDRESS_IN_USE)
        head, _ = await rs_from(ATTACKER, port, di.Register("thief.example", 1))
        cookie = di.parse_registered(head)[0]
        head, _ = await rs_from(ATTACKER, port, di.Register(addr.host, addr.port, cookie))
        assert (head.status, head.reason) == (409, di.ADDRESS_IN_USE)  # nor by moving
        view = net.rs.registry.view(victim.rs.cookie or 0)
        assert view is not None and view.active and di.PeerAddr(view.hostname, view.port) == addr
        _reply, listed = await RSClient(HOST, port).pquery()
        assert listed.items.count(addr) == 1
        assert (await victim.keep_alive()).status == Status.OK  # still itself
        getter = await net.peer("getter", register=False)
        assert (await getter.get(7)).fetched is not None


# ----------------------------------------------------------------------------- indexes
def index_reply(count: int, port: int) -> bytes:
    """An RFCQuery reply of ``count`` records of a fake holder 127.0.0.2:``port``."""
    body = b"".join(b"RFC %d T %s %d 7200\r\n" % (n % limits.MAX_RFC_NUMBER + 1,
                                                   ATTACKER.encode(), port)
                    for n in range(count))
    return b"P2P-DI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@arun_steady
async def test_huge_indexes_from_fake_peers_stay_within_budget(tmp_path: Path) -> None:
    """A million records (refused: over the body a client accepts), then more than a
    peer's share, then enough fake peers to fill the index: the victim's index holds its
    budgets, and the real holder's record still gets in (fair share) and serves the file.
    Steady (no overall deadline): the replies, tens of MB, are made in the test, which a
    busy machine stretched past ``arun``'s; every exchange keeps its own (connect, first
    byte)."""
    per_peer, most = limits.DI_MAX_RECORDS_PER_PEER, limits.DI_MAX_INDEX_RECORDS
    sizes = [1_000_000, 5 * per_peer] + [per_peer] * (most // per_peer)
    async with di_net(tmp_path) as net, AsyncExitStack() as stack:
        holder = await net.peer("holder", {999_999: 2500})
        victim = await net.peer("victim")
        victim.index.add_local(1, "Mine")
        fakes = [di.PeerAddr(ATTACKER, await stack.enter_async_context(
            fake_peer(index_reply(size, 10_000 + n), ATTACKER)))
            for n, size in enumerate(sizes)]
        with pytest.raises(RemoteProtocolError):
            await victim.rfc_query(fakes[0])
        assert len(victim.index.records()) == 1  # nothing of it merged
        merged = await victim.rfc_query(fakes[1])
        assert (merged.added, victim.index.held_from(fakes[1])) == (per_peer, per_peer)
        for fake in fakes[2:]:
            await victim.rfc_query(fake)
        assert len(victim.index.records()) == 1 + most  # full, its local record kept
        shares = [victim.index.held_from(fake) for fake in fakes[1:]]
        assert sum(shares) == most and max(shares) <= per_peer
        assert shares[-1] >= max(shares) - 1  # the last came in up to the fullest's share
        result = await victim.get(999_999)  # RFCQuery of the holder: room made for it
        assert result.fetched is not None, result.steps
        assert result.fetched.path.read_bytes() == content(999_999, 2500)
        assert victim.index.held_from(holder.me) == 1
        assert len(victim.index.records()) == 2 + most  # + the downloaded RFC, local
        assert set(victim.index.local()) == {1, 999_999}
