"""The one server runtime, with a toy application over real loopback sockets.

The real servers (index, RS, upload, RFC, pieces) are tested as themselves elsewhere; here
the parts they share: admission (in all and per source address), deadlines (first request,
idle, head, write stall), one-exchange closing and its linger, answers that fail, and the
owner of answer tasks.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from p2pshare import limits
from p2pshare.errors import LocalProtocolError, PeerGone, RemoteProtocolError, Status
from p2pshare.net.runtime import Answer, Link, Policy, Server
from p2pshare.protocol import Connection, Data, EndOfMessage, Event, Request, Response, Role

from ..aio import HOST, Raw, arun, serving
from ..helpers import async_wait_for

V = "P2P-DI/1.0"
BIG = 32 * limits.MiB  # far more than both sockets' buffers hold


def reply(data: bytes) -> list[Event]:
    return [Response(200, V, (("Content-Length", str(len(data))),)), Data(data),
            EndOfMessage()]


class Toy:
    """``SMALL`` -> two bytes; ``BIG`` -> BIG bytes; ``SLOW`` -> two bytes from a task;
    ``BUG``/``BUGLATER`` raise a bug now/in the task; ``REFUSE`` raises a 404 error;
    ``GONE`` fails in the task as a vanished peer would."""

    def __init__(self) -> None:
        self.gone: list[Link] = []
        self.answered = 0
        self.order: list[str] = []  # the source address of each request, in dispatch order

    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        method = request.method
        self.order.append(link.peername[0])
        if method == "BUG":
            raise RuntimeError("a bug in a handler")
        if method == "REFUSE":
            raise LocalProtocolError("refused", status=Status.NOT_FOUND)
        if method in ("SLOW", "BUGLATER", "GONE"):
            return self._later(link, method)
        self.answered += 1
        return reply(b"ok" if method == "SMALL" else b"x" * BIG)

    async def _later(self, link: Link, method: str) -> None:
        await asyncio.sleep(0)  # a real suspension: the answer runs as a task
        if method == "BUGLATER":
            raise ValueError("a bug in an answer task")
        if method == "GONE":
            raise PeerGone("the other side vanished")
        self.answered += 1
        await link.send(*reply(b"ok"))

    def error(self, link: Link, status: Status) -> list[Event]:
        return [Response(int(status), V, (("Content-Length", "0"),)), EndOfMessage()]

    def connected(self, link: Link) -> None:
        pass

    def disconnected(self, link: Link) -> None:
        self.gone.append(link)


@asynccontextmanager
async def toy_server(**policy: Any) -> AsyncIterator[tuple[Server, Toy, int]]:
    keep_alive = not policy.get("one_exchange", False)
    app = Toy()
    server = Server(app, lambda: Connection(Role.SERVER, keep_alive=keep_alive),
                    Policy("toy", **policy))
    async with serving(server) as port:
        yield server, app, port


def ok_reply() -> bytes:
    return f"{V} 200 OK\r\nContent-Length: 2\r\n\r\nok".encode()


def req(method: str) -> bytes:
    return f"{method} x {V}\r\n\r\n".encode()


async def served(port: int, source: str | None = None) -> bool:
    """Whether a fresh connection (from ``source``) gets its SMALL answered."""
    raw = await Raw.connect(port, source=source)
    await raw.send(req("SMALL"))
    got = await raw.recv(len(ok_reply()))
    await raw.close()
    return got == ok_reply()


# ------------------------------------------------------------------ one exchange
@arun
async def test_one_exchange_connection_closes_after_its_answer() -> None:
    async with toy_server(one_exchange=True, first_request_timeout=5.0) as (server, _, port):
        raw = await Raw.connect(port)
        await raw.send(req("SMALL"))
        assert await raw.rest() == ok_reply()
        await async_wait_for(lambda: server.active == 0, what="the link forgotten")


@arun
async def test_bytes_after_the_one_request_do_not_cut_the_answer() -> None:
    """A second request on a one-exchange connection is not read; the close lingers so that
    the unread bytes do not turn it into a reset that destroys the answer."""
    async with toy_server(one_exchange=True) as (_server, _, port):
        raw = await Raw.connect(port)
        await raw.send(req("SMALL") * 2)
        assert await raw.rest() == ok_reply()


@arun
async def test_the_clients_close_ends_the_linger_at_once() -> None:
    """A malformed request gets its 400, then the server lingers for the client's close;
    when the client closes, the connection (and the App's records of it) goes at once, not
    after the linger (an hour here: waiting for it would fail the test)."""
    async with toy_server(linger=3600.0) as (server, app, port):
        raw = await Raw.connect(port)
        await raw.send(b"\x00garbage that is no request\r\n\r\n")
        assert (await raw.line()).startswith(f"{V} 400".encode())
        await async_wait_for(lambda: len(app.gone) == 1, what="the App told at once")
        assert await raw.finish() == b"Content-Length: 0\r\n\r\n"
        await async_wait_for(lambda: server.active == 0, what="the linger ended by EOF")


@arun
async def test_after_an_answer_from_a_task_the_clients_close_ends_the_linger() -> None:
    """Reading pauses while a task answers; the closing link must read again, or it would
    hold its slot (and count against its address) for the whole linger."""
    async with toy_server(one_exchange=True, linger=3600.0) as (server, _, port):
        raw = await Raw.connect(port)
        await raw.send(req("SLOW"))
        assert await raw.recv(len(ok_reply())) == ok_reply()
        await raw.close()
        await async_wait_for(lambda: server.active == 0, what="the linger ended by EOF")


# ------------------------------------------------------------------ deadlines
@arun
async def test_silent_connection_is_closed_by_the_first_request_deadline() -> None:
    async with toy_server(one_exchange=True, first_request_timeout=0.3) as (server, _, port):
        silent = await Raw.connect(port)
        trickle = await Raw.connect(port)
        await trickle.send(b"SMA")  # a request begun, never finished
        assert await silent.rest() == b""
        assert await trickle.rest() == b""
        assert server.active == 0


@arun
async def test_idle_deadline_closes_a_resting_connection_after_its_answers() -> None:
    async with toy_server(idle_timeout=0.3) as (server, _, port):
        raw = await Raw.connect(port)
        await raw.expect(req("SMALL"), ok_reply())
        await raw.expect(req("SMALL"), ok_reply())  # answered: the link rests again
        assert await raw.rest() == b""  # and the idle deadline ends it
        assert server.active == 0


@arun
async def test_head_deadline_runs_from_the_first_byte() -> None:
    """No idle deadline (a peer may stay silent), but a begun request must end in time."""
    async with toy_server(head_timeout=0.3) as (server, _, port):
        silent = await Raw.connect(port)
        trickle = await Raw.connect(port)
        await trickle.send(b"SMALL x P2P")
        assert await trickle.rest() == b""
        assert server.active == 1  # the silent one stays
        await silent.expect(req("SMALL"), ok_reply())


@pytest.mark.parametrize("one_exchange", [True, False], ids=["closing", "persistent"])
@arun
async def test_a_client_that_never_reads_its_big_answer_is_dropped(one_exchange: bool) -> None:
    """The write-stall deadline: a client that takes none of our bytes is cut off and
    what we buffered for it is dropped, whether the link was closing or not."""
    async with toy_server(one_exchange=one_exchange, write_stall_timeout=0.3
                          ) as (server, _, port):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (HOST, port))
        await loop.sock_sendall(sock, req("BIG"))
        try:
            await async_wait_for(lambda: any(link.stall_at for link in server.links),
                                 what="the answer written, the stall deadline armed")
            await async_wait_for(lambda: server.active == 0,
                                 what="the staller's connection dropped")
        finally:
            sock.close()
        assert await served(port)  # and the server goes on serving


# ------------------------------------------------------------------ failing answers
@pytest.mark.parametrize("method", ["BUG", "BUGLATER", "GONE"])
@arun
async def test_an_answer_that_raises_frees_its_connection(method: str) -> None:
    """A handler bug, in the handler or in its task, or a peer gone mid-answer: the
    connection is closed and its slot freed (before, such a link stayed busy for ever)."""
    async with toy_server(max_connections=1) as (server, app, port):
        raw = await Raw.connect(port)
        await raw.send(req(method))
        assert await raw.rest() == b""  # nothing to say for a bug: the connection closes
        await async_wait_for(lambda: server.active == 0 and len(app.gone) == 1,
                             what="the slot freed and the App told")
        assert len(server.tasks) == 1  # the sweep alone: no task left behind
        assert await served(port)  # the one slot serves the next client


@arun
async def test_a_handler_error_with_a_status_is_answered_then_closed() -> None:
    async with toy_server() as (server, _, port):
        raw = await Raw.connect(port)
        await raw.send(req("REFUSE"))
        assert await raw.rest() == f"{V} 404 Not Found\r\nContent-Length: 0\r\n\r\n".encode()
        await async_wait_for(lambda: server.active == 0, what="the link freed")


@arun
async def test_answers_from_tasks_keep_the_order_of_requests() -> None:
    async with toy_server() as (_server, app, port):
        raw = await Raw.connect(port)
        await raw.send(req("SLOW") + req("SMALL") + req("SLOW"))
        assert await raw.recv(3 * len(ok_reply())) == ok_reply() * 3
        assert app.answered == 3


@arun
async def test_a_pipelined_flood_yields_to_other_clients() -> None:
    """3,000 requests in one send from 127.0.0.2 (one read of the server's): a request from
    127.0.0.1 sent after them is answered after at most a few turns of the flood's, not
    after all of it."""
    flood_count = 3000
    async with toy_server() as (_server, app, port):
        flood = await Raw.connect(port, source="127.0.0.2")
        victim = await Raw.connect(port, source="127.0.0.1")
        await flood.send(req("SMALL") * flood_count)
        await victim.expect(req("SMALL"), ok_reply())
        assert await flood.recv(flood_count * len(ok_reply())) == ok_reply() * flood_count
        served_first = app.order.index("127.0.0.1")
        assert served_first < flood_count  # without turns: after all 3,000
        print(f"\n[measure] victim answered after {served_first} of {flood_count} "
              f"pipelined requests (turns of {limits.REQUESTS_PER_TURN})")


# ------------------------------------------------------------------ admission
@arun
async def test_an_address_at_its_cap_makes_room_from_its_own_connections() -> None:
    """A newcomer from 127.0.0.2, which holds its cap, is admitted in place of that
    address's least productive connection; other addresses are untouched."""
    async with toy_server(max_connections=10, max_per_source=2) as (server, _, port):
        busy = await Raw.connect(port, source="127.0.0.2")
        await busy.expect(req("SMALL"), ok_reply())  # it has moved bytes: kept
        idle = await Raw.connect(port, source="127.0.0.2")
        other = await Raw.connect(port, source="127.0.0.1")
        await async_wait_for(lambda: server.active == 3, what="three admitted")
        newcomer = await Raw.connect(port, source="127.0.0.2")
        assert await idle.rest() == b""  # made room
        assert server.evicted == 1 and server.refused == 0
        await newcomer.expect(req("SMALL"), ok_reply())
        await busy.expect(req("SMALL"), ok_reply())
        await other.expect(req("SMALL"), ok_reply())
        assert server.per_source == {"127.0.0.2": 2, "127.0.0.1": 1}


@arun
async def test_a_full_server_takes_room_from_the_address_holding_most() -> None:
    """127.0.0.2 fills the server; a newcomer from 127.0.0.1 gets in, one of 127.0.0.2's
    connections making room; once no address holds more than its share, a newcomer from
    the biggest one is refused."""
    async with toy_server(max_connections=4, max_per_source=100) as (server, _, port):
        flood = [await Raw.connect(port, source="127.0.0.2") for _ in range(4)]
        await async_wait_for(lambda: server.active == 4, what="the server full")
        assert await served(port, source="127.0.0.1")  # room made, served, gone
        await async_wait_for(lambda: server.per_source == {"127.0.0.2": 3},
                             what="the newcomer's visit over")
        held = [await Raw.connect(port, source=f"127.0.0.{n}") for n in (3, 4)]
        await async_wait_for(lambda: server.per_source == {"127.0.0.2": 2, "127.0.0.3": 1,
                                                           "127.0.0.4": 1},
                             what="one in the free slot, one in room made")
        assert server.evicted == 2
        late = await Raw.connect(port, source="127.0.0.2")
        assert await late.rest() == b""  # 127.0.0.2 already holds no more than its share
        assert server.refused == 1
        closed = [await raw.rest() == b"" for raw in flood[:2]]
        assert closed == [True] * 2  # the longest-held, least productive made room
        for raw in [*flood[2:], *held]:
            await raw.expect(req("SMALL"), ok_reply())


@arun
async def test_without_eviction_a_full_server_refuses_newcomers_at_once() -> None:
    async with toy_server(max_connections=1, evict=False) as (server, _, port):
        first = await Raw.connect(port)
        await first.expect(req("SMALL"), ok_reply())
        second = await Raw.connect(port, source="127.0.0.2")
        assert await second.rest() == b""
        assert server.refused == 1 and server.active == 1


@arun
async def test_aclose_ends_every_connection_and_task() -> None:
    app = Toy()
    server = Server(app, lambda: Connection(Role.SERVER), Policy("toy"))
    _, port = await server.start(HOST, 0)
    raws = [await Raw.connect(port) for _ in range(3)]
    await async_wait_for(lambda: server.active == 3, what="three admitted")
    await server.aclose()
    assert server.active == 0 and len(server.tasks) == 0 and len(app.gone) == 3
    for raw in raws:
        assert await raw.rest() == b""


def test_quick_answers_are_for_persistent_connections_only() -> None:
    with pytest.raises(ValueError):
        Server(Toy(), lambda: Connection(Role.SERVER), Policy("toy", one_exchange=True),
               quick=lambda link, data: None)


def test_malformed_input_is_a_remote_error() -> None:
    """What the runtime answers with ``App.error`` comes from the codec's errors."""
    conn = Connection(Role.SERVER)
    conn.receive_data(b"\x00\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.status == Status.BAD_REQUEST
