"""HttpServer on real loopback sockets: routes, keep-alive, HEAD, 404/405, refusals with
their status and a close, per-source caps; and the stdlib's http.client as an independent
client."""

from __future__ import annotations

import asyncio
import http.client
from typing import Any

from p2pshare.protocol.http import Query
from p2pshare.web.server import HttpServer, Reply

from ..aio import Raw, arun, serving
from ..helpers import async_wait_for

Seen = list[tuple[str, Query, str]]


def echo_server(seen: Seen, **kwargs: Any) -> HttpServer:
    server = HttpServer("test", **kwargs)

    def hello(path: str, query: Query, source: str) -> Reply:
        seen.append((path, query, source))
        return 200, "text/plain", b"hello"

    async def later(path: str, query: Query, source: str) -> Reply:
        await asyncio.sleep(0)  # a turn of the loop: the answer comes from a task
        return 201, "application/json", b"{}"

    server.add_route("/hello", hello)
    server.add_route("/later", later)
    return server


async def reply(raw: Raw) -> tuple[bytes, bytes]:
    """One response: its head and its Content-Length body."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = await raw.line()
        assert line, head
        head += line
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return head, await raw.recv(length)


@arun
async def test_routes_keep_alive_and_pipelining() -> None:
    seen: Seen = []
    async with serving(echo_server(seen)) as port:
        raw = await Raw.connect(port)
        await raw.send(b"GET /hello?info_hash=%00%ff&a=1&a=2 HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = await reply(raw)
        assert head.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               b"Content-Length: 5\r\nDate: ")
        assert body == b"hello"
        assert seen[0] == ("/hello", {"info_hash": [b"\x00\xff"], "a": [b"1", b"2"]},
                           "127.0.0.1")
        head, body = await reply(raw)
        assert head.startswith(b"HTTP/1.1 201 Created") or head.startswith(b"HTTP/1.1 201 ")
        assert body == b"{}"
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += await raw.line()
        assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 5" in head
        head, body = await reply(raw)
        assert head.startswith(b"HTTP/1.1 404 Not Found") and body == b"404 Not Found\n"
        head, body = await reply(raw)
        assert head.startswith(b"HTTP/1.1 405 Method Not Allowed") and b"Allow: GET, HEAD" in head
        await raw.expect(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         b"HTTP/1.1 200 OK\r\n")
        assert (await raw.rest()).endswith(b"Connection: close\r\n\r\nhello")


@arun
async def test_malformed_requests_get_their_status_and_a_close() -> None:
    async with serving(echo_server([])) as port:
        for request, status in [(b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", b"505"),
                                (b"GET /hello http/1.1\r\nHost: x\r\n\r\n", b"400"),
                                (b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
                                (b"GET /hello HTTP/1.1\r\n\r\n", b"400"),
                                (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                                 b"414"),
                                (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                                 b"400")]:
            raw = await Raw.connect(port)
            await raw.send(request + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await raw.finish()
            assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer
            assert answer.count(b"HTTP/1.1") == 1  # nothing after the refusal
            await raw.close()


@arun
async def test_a_source_address_over_its_cap_makes_room_from_its_own() -> None:
    """At its cap, an address's newcomer takes the slot of one of its own idle
    connections (``net.admission``); another address is not touched."""
    server = echo_server([], max_per_source=2)
    async with serving(server) as port:
        other = await Raw.connect(port, source="127.0.0.2")
        held = [await Raw.connect(port) for _ in range(2)]
        await async_wait_for(lambda: server.server.active == 3)
        newcomer = await Raw.connect(port)
        await newcomer.expect(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK")
        closed = await asyncio.wait_for(asyncio.wait(
            [asyncio.ensure_future(raw.rest()) for raw in held],
            return_when=asyncio.FIRST_COMPLETED), 5)
        assert len(closed[0]) == 1 and server.server.evicted == 1
        await other.expect(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK")
        for raw in [*held, other, newcomer]:
            await raw.close()


def test_route_paths_are_unique() -> None:
    server = HttpServer()
    server.add_route("/a", lambda _p, _q, _s: (200, "text/plain", b""))
    for path in ("/a", "a"):
        try:
            server.add_route(path, lambda _p, _q, _s: (200, "text/plain", b""))
        except ValueError:
            continue
        raise AssertionError(f"{path} accepted")


@arun
async def test_stdlib_http_client_interop() -> None:
    """http.client (the standard library's client, written apart from us) keeps one
    connection for several requests and reads every answer."""
    async with serving(echo_server([])) as port:
        def fetch() -> list[tuple[int, bytes]]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            got = []
            for method, path in [("GET", "/hello?x=%20"), ("HEAD", "/hello"),
                                 ("GET", "/later"), ("HEAD", "/missing"),
                                 ("GET", "/missing")]:
                conn.request(method, path)
                answer = conn.getresponse()
                got.append((answer.status, answer.read()))
            conn.close()
            return got

        assert await asyncio.to_thread(fetch) == [(200, b"hello"), (200, b""), (201, b"{}"),
                                                  (404, b""), (404, b"404 Not Found\n")]


@arun
async def test_a_silent_connection_is_closed_after_the_idle_deadline() -> None:
    """A browser's idle keep-alive connection (or one that never asks) is closed."""
    server = echo_server([], idle_timeout=0.5)
    async with serving(server) as port:
        silent = await Raw.connect(port)
        asked = await Raw.connect(port)
        await asked.expect(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK")
        assert (await silent.rest()) == b""
        assert (await asked.rest()).endswith(b"hello")
        await async_wait_for(lambda: server.server.active == 0)


@arun
async def test_white_space_before_a_header_colon_is_a_400_not_a_content_length() -> None:
    """``Content-Length : 5`` (RFC 9112 section 5.1: a server MUST answer 400): a proxy
    in front that takes it for another header forwards no body, and reading it as a
    Content-Length would take the next request's first bytes as this one's body."""
    async with serving(echo_server([])) as port:
        for request in (b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n",
                        b"GET /hello HTTP/1.1\r\nHost\t: x\r\n\r\n"):
            raw = await Raw.connect(port)
            await raw.send(request + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await raw.finish()
            assert answer.startswith(b"HTTP/1.1 400 "), answer
            assert answer.count(b"HTTP/1.1") == 1
            await raw.close()


@arun
async def test_a_handler_that_raises_answers_500_and_closes() -> None:
    """A bug in one handler (sync or async) is a 500 to its client (RFC 9110 15.6.1),
    then a close; the server goes on serving others."""
    server = echo_server([])

    def broken(_path: str, _query: Query, _source: str) -> Reply:
        raise RuntimeError("a bug")

    async def broken_later(_path: str, _query: Query, _source: str) -> Reply:
        await asyncio.sleep(0)
        raise RuntimeError("a bug")

    server.add_route("/broken", broken)
    server.add_route("/broken-later", broken_later)
    async with serving(server) as port:
        for path in (b"/broken", b"/broken-later"):
            for method in (b"GET", b"HEAD"):
                raw = await Raw.connect(port)
                await raw.send(method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                               b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = await raw.finish()
                assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), answer
                assert b"Connection: close\r\n" in answer
                assert answer.count(b"HTTP/1.1") == 1  # closed after the 500
                assert answer.endswith(b"\r\n\r\n") == (method == b"HEAD")
                await raw.close()
        other = await Raw.connect(port)
        await other.expect(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK")
        await other.close()


@arun
async def test_answers_are_not_stored_nor_sniffed() -> None:
    """Every route shows live state (the dashboard, /api/state, /metrics): no cache on
    the way may keep a copy (RFC 9111 allows a heuristic freshness for a 200 without
    Cache-Control), and no browser may read a JSON holding peers' titles as HTML."""
    async with serving(echo_server([])) as port:
        raw = await Raw.connect(port)
        for path in (b"/hello", b"/later", b"/missing"):
            await raw.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _body = await reply(raw)
            assert b"\r\nCache-Control: no-store\r\n" in head, head
            assert b"\r\nX-Content-Type-Options: nosniff\r\n" in head, head
        await raw.close()


@arun
async def test_a_big_answer_waits_for_a_client_that_does_not_read() -> None:
    """/api/state can be megabytes (rows of swarms and their members): a client that asks
    and does not read must not make the server hold all of it in memory (times every
    connection it may open), only what a write-buffer holds, the rest as it reads."""
    big = bytes(range(256)) * (64 * 1024)  # 16 MiB

    async def huge(_path: str, _query: Query, _source: str) -> Reply:
        return 200, "application/octet-stream", big

    server = HttpServer("test")
    server.add_route("/big", huge)
    async with serving(server) as port:
        raw = await Raw.connect(port, rcvbuf=4096)
        await raw.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await async_wait_for(lambda: len(server.server.links) == 1)
        (link,) = server.server.links
        await async_wait_for(lambda: link.paused)
        assert link._transport is not None
        assert link._transport.get_write_buffer_size() < 1024 * 1024
        head, body = await reply(raw)
        assert head.startswith(b"HTTP/1.1 200 OK") and body == big
        await raw.close()
