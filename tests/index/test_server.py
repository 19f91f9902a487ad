"""The index server over real sockets, byte for byte, with the handout's own messages."""

from __future__ import annotations

import asyncio
import socket

import pytest

from p2pshare import limits
from p2pshare.index.store import IndexBudget, MemoryIndex
from p2pshare.protocol import ci
from p2pshare.protocol.ci import parse_record

from ..aio import Raw, arun, arun_steady, index_server
from ..helpers import async_wait_for


def roomy() -> MemoryIndex:
    """An index whose budgets let one connection hold a big index (as a test fixture)."""
    return MemoryIndex(IndexBudget(per_connection=10**6, claims_per_connection=10**6))


V = b"P2P-CI/1.0"
OK = b"P2P-CI/1.0 200 OK\r\n\r\n"
NOT_FOUND = b"P2P-CI/1.0 404 Not Found\r\n\r\n"
BAD = b"P2P-CI/1.0 400 Bad Request\r\n\r\n"
OLD = b"P2P-CI/1.0 505 P2P-CI Version Not Supported\r\n\r\n"

# docs/p2p-ci.md#p2s-examples, exactly as the handout prints them.
ADD_123 = (b"ADD RFC 123 P2P-CI/1.0\r\n"
           b"Host: thishost.csc.ncsu.edu\r\n"
           b"Port: 5678\r\n"
           b"Title: A Proferred Official ICP\r\n\r\n")
LINE_123 = b"RFC 123 A Proferred Official ICP thishost.csc.ncsu.edu 5678\r\n"
LOOKUP_3457 = (b"LOOKUP RFC 3457 P2P-CI/1.0\r\n"
               b"Host: thishost.csc.ncsu.edu\r\n"
               b"Port: 5678\r\n"
               b"Title: Requirements for IPsec Remote Access Scenarios\r\n\r\n")
LIST = (b"LIST ALL P2P-CI/1.0\r\n"
        b"Host: thishost.csc.ncsu.edu\r\n"
        b"Port: 5678\r\n\r\n")


def add(rfc: int, title: str, host: str = "h", port: int = 1000) -> bytes:
    return (f"ADD RFC {rfc} P2P-CI/1.0\r\nHost: {host}\r\nPort: {port}\r\n"
            f"Title: {title}\r\n\r\n").encode()


def line(rfc: int, title: str, host: str = "h", port: int = 1000) -> bytes:
    return f"RFC {rfc} {title} {host} {port}\r\n".encode()


def lookup(rfc: int) -> bytes:
    return f"LOOKUP RFC {rfc} P2P-CI/1.0\r\nHost: h\r\nPort: 1000\r\n\r\n".encode()


def remove(rfc: int, host: str = "h", port: int = 1000) -> bytes:
    return f"REMOVE RFC {rfc} P2P-CI/1.0\r\nHost: {host}\r\nPort: {port}\r\n\r\n".encode()


def ok(*lines: bytes) -> bytes:
    return OK + b"".join(lines) + b"\r\n"


async def joined(port: int, *records: tuple[int, str, str, int]) -> Raw:
    """A new connection that has ADDed ``records`` (rfc, title, host, port), each echoed."""
    raw = await Raw.connect(port)
    for record in records:
        await raw.expect(add(*record), ok(line(*record)))
    return raw


async def read_list(raw: Raw) -> list[bytes]:
    """Read one whole 200 LIST reply; its data lines."""
    assert await raw.recv(len(OK)) == OK
    lines = []
    while (got := await raw.line()) != b"\r\n":
        assert got.endswith(b"\r\n"), got
        lines.append(got)
    return lines


# ------------------------------------------------------------------------ handout examples
@arun
async def test_handout_add_lookup_list_byte_exact() -> None:
    async with index_server() as (_, port):
        raw = await Raw.connect(port)
        await raw.expect(ADD_123, ok(LINE_123))
        await raw.expect(LOOKUP_3457, NOT_FOUND)
        await raw.expect(add(3457, "Requirements for IPsec Remote Access Scenarios"),
                         ok(line(3457, "Requirements for IPsec Remote Access Scenarios")))
        await raw.expect(LOOKUP_3457,
                         ok(line(3457, "Requirements for IPsec Remote Access Scenarios")))
        await raw.expect(LIST, ok(line(3457, "Requirements for IPsec Remote Access Scenarios"),
                                  LINE_123))
        assert await raw.finish() == b""


@arun
async def test_list_of_empty_index() -> None:
    async with index_server() as (_, port):
        raw = await Raw.connect(port)
        await raw.expect(LIST, b"P2P-CI/1.0 200 OK\r\n\r\n\r\n")
        await raw.expect(lookup(1), b"P2P-CI/1.0 404 Not Found\r\n\r\n")
        assert await raw.finish() == b""


@arun
async def test_handout_trailing_space_and_bare_lf_accepted() -> None:
    async with index_server() as (_, port):
        raw = await Raw.connect(port)
        request = (b"ADD RFC 2345 P2P-CI/1.0 \r\nHost: thishost.csc.ncsu.edu\r\nPort: 5678\r\n"
                   b"Title: Domain Names and Company Name Retrieval\r\n\r\n")
        reply = ok(b"RFC 2345 Domain Names and Company Name Retrieval "
                   b"thishost.csc.ncsu.edu 5678\r\n")
        await raw.expect(request, reply)
        await raw.expect(add(7, "Seven").replace(b"\r\n", b"\n"), ok(line(7, "Seven")))


@arun
async def test_lookup_lists_every_holder_newest_first() -> None:
    async with index_server() as (_, port):
        a = await joined(port, (9, "Nine", "a", 1))
        await joined(port, (9, "Nine", "b", 2))
        await a.expect(lookup(9), ok(line(9, "Nine", "b", 2), line(9, "Nine", "a", 1)))


# ------------------------------------------------------------------------ error statuses
def bad(request: bytes) -> object:
    return pytest.param(request, BAD, id=request.split(b"\r\n")[0].decode())


def old(request: bytes) -> object:
    return pytest.param(request, OLD, id=request.split(b"\r\n")[0].decode())


@pytest.mark.parametrize(("request_bytes", "reply"), [
    bad(b"FOO RFC 1 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"),
    bad(b"LIST EVERYTHING P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"),
    bad(b"LIST P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"),
    bad(b"LOOKUP RFC abc P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"),
    bad(b"LOOKUP RFC 0 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"),
    bad(b"LOOKUP RFC 99999999999 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"),
    bad(b"LOOKUP 123 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"),
    bad(b"ADD RFC 5 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"),  # no Title
    bad(b"ADD RFC 6 P2P-CI/1.0\r\nHost: h\r\nTitle: t\r\n\r\n"),  # no Port
    bad(b"ADD RFC 7 P2P-CI/1.0\r\nPort: 1\r\nTitle: t\r\n\r\n"),  # no Host
    bad(b"ADD RFC 8 P2P-CI/1.0\r\nHost: h\r\nPort: http\r\nTitle: t\r\n\r\n"),
    bad(b"ADD RFC 9 P2P-CI/1.0\r\nHost: h\r\nPort: 70000\r\nTitle: t\r\n\r\n"),
    bad(b"GET RFC 5 P2P-CI/1.0\r\nHost: h\r\nOS: x\r\n\r\n"),  # GET is for upload servers
    old(b"LIST ALL P2P-CI/2.0\r\nHost: h\r\nPort: 1\r\n\r\n"),
    old(b"ADD RFC 5 P2P-CI/1.1\r\nHost: h\r\nPort: 1\r\nTitle: t\r\n\r\n"),
    old(b"FOO RFC 1 P2P-CI/2.0\r\n\r\n"),  # the version is checked first (2.4)
])
@arun
async def test_rejected_request_is_answered_and_connection_goes_on(request_bytes: bytes,
                                                                   reply: bytes) -> None:
    async with index_server() as (server, port):
        raw = await Raw.connect(port)
        await raw.expect(ADD_123, ok(LINE_123))
        await raw.expect(request_bytes, reply)
        await raw.expect(LIST, ok(LINE_123))
        assert len(server.index) == 1


@pytest.mark.parametrize("garbage", [
    b"LIST ALL P2P-CI/1.0\r\nHost: " + b"h" * limits.MAX_LINE + b"\r\n\r\n",
    b"L" * (limits.MAX_LINE + 10),  # no line end at all: the limit still applies
    b"L" * (limits.MAX_LINE * 40),  # more than the server reads before it gives up
    b"\x00\xff\xfe binary \x80\x81\r\n\r\n",
    b"LIST ALL P2P-CI/1.0\r\n" + b"X-A: b\r\n" * (limits.MAX_HEADERS + 1) + b"\r\n",
], ids=["long-header", "no-line-end", "huge", "binary", "many-headers"])
@arun
async def test_framing_error_is_400_then_close(garbage: bytes) -> None:
    async with index_server() as (server, port):
        raw = await Raw.connect(port)
        await raw.expect(ADD_123, ok(LINE_123))
        await raw.send(garbage)
        assert await raw.finish() == BAD
        await async_wait_for(lambda: len(server.index) == 0, what="records dropped")
        other = await Raw.connect(port)  # the server itself is unharmed
        await other.expect(LIST, b"P2P-CI/1.0 200 OK\r\n\r\n\r\n")


# ------------------------------------------------------------------------ framing in transit
@arun
async def test_pipelined_requests_in_one_send() -> None:
    async with index_server() as (_, port):
        raw = await Raw.connect(port)
        requests = add(1, "One") + add(2, "Two") + lookup(1) + lookup(3) + b"\r\n" + LIST
        replies = (ok(line(1, "One")) + ok(line(2, "Two")) + ok(line(1, "One")) + NOT_FOUND
                   + ok(line(2, "Two"), line(1, "One")))
        await raw.expect(requests, replies)
        assert await raw.finish() == b""


@arun
async def test_request_byte_by_byte() -> None:
    async with index_server() as (_, port):
        raw = await Raw.connect(port)
        for byte in ADD_123 + LIST:
            await raw.send(bytes([byte]))
        assert await raw.recv(len(ok(LINE_123)) * 2) == ok(LINE_123) * 2


@arun
async def test_many_concurrent_peers() -> None:
    async with index_server() as (server, port):
        peers = [await Raw.connect(port) for _ in range(6)]
        await asyncio.gather(*(p.expect(add(100 + i, f"T {i}", "host", 2000 + i),
                                        ok(line(100 + i, f"T {i}", "host", 2000 + i)))
                               for i, p in enumerate(peers)))
        await asyncio.gather(*(p.expect(add(1, "Shared", "host", 2000 + i),
                                        ok(line(1, "Shared", "host", 2000 + i)))
                               for i, p in enumerate(peers)))
        assert server.index.peer_count == 6 and len(server.index) == 12
        for p in peers:
            await p.send(lookup(1))
            assert sorted(await read_list(p)) == sorted(
                line(1, "Shared", "host", 2000 + i) for i in range(6))
            await p.send(LIST)
            assert len(await read_list(p)) == 12


# ------------------------------------------------------------------------ leaving
@arun
async def test_records_vanish_on_clean_close() -> None:
    async with index_server() as (server, port):
        a = await joined(port, (1, "One", "a", 1), (2, "Two", "a", 1))
        b = await joined(port, (1, "One", "b", 2))
        await a.close()
        await async_wait_for(lambda: len(server.index) == 1, what="a's records dropped")
        await b.expect(LIST, ok(line(1, "One", "b", 2)))
        assert server.index.peers() == [("b", 2)]


@arun
async def test_records_vanish_on_reset() -> None:
    async with index_server() as (server, port):
        a = await joined(port, (1, "One", "a", 1))
        b = await joined(port, (2, "Two", "b", 2))
        a.reset()
        await async_wait_for(lambda: len(server.index) == 1, what="a's records dropped")
        await b.expect(LIST, ok(line(2, "Two", "b", 2)))


@arun
async def test_records_vanish_when_closed_mid_request() -> None:
    async with index_server() as (server, port):
        a = await joined(port, (1, "One", "a", 1))
        await a.send(b"LIST ALL P2P-")
        await a.close()
        await async_wait_for(lambda: len(server.index) == 0, what="a's records dropped")


async def cut_by_head_deadline(port: int) -> None:
    """A connection that stalls mid-request, until the head deadline closes it."""
    slow = await Raw.connect(port)
    await slow.send(b"LIST")
    assert await slow.rest() == b""


@arun
async def test_silent_peer_keeps_its_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer says nothing between requests for as long as it likes (1.3).

    The head deadline is made short; a second connection that stalls mid-request is cut
    by it, and only later than the first peer's silence began: the silent peer must stay.
    """
    monkeypatch.setattr(limits, "HEAD_TIMEOUT", 0.2)
    async with index_server() as (server, port):
        quiet = await joined(port, (1, "One", "q", 1))
        await cut_by_head_deadline(port)
        assert server.index.lookup(1) != []
        await quiet.expect(LIST, ok(line(1, "One", "q", 1)))


@arun
async def test_peer_with_nothing_to_add_may_stay_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer with no RFCs sends nothing after connecting; it is still an active peer."""
    monkeypatch.setattr(limits, "FIRST_REQUEST_TIMEOUT", 0.1)
    monkeypatch.setattr(limits, "HEAD_TIMEOUT", 0.2)
    async with index_server() as (server, port):
        mute = await Raw.connect(port)
        await cut_by_head_deadline(port)
        assert server.active == 1
        await mute.expect(LIST, b"P2P-CI/1.0 200 OK\r\n\r\n\r\n")


# ------------------------------------------------------------------------ ownership
@arun
async def test_remove_extension() -> None:
    async with index_server() as (server, port):
        a, b = await joined(port, (1, "One", "a", 1), (2, "Two", "a", 1)), await Raw.connect(port)
        await b.expect(remove(1, "a", 1), NOT_FOUND)  # not b's record
        await a.expect(remove(3, "a", 1), NOT_FOUND)  # a has no RFC 3
        await a.expect(remove(1, "a", 1), ok(line(1, "One", "a", 1)))
        await a.expect(remove(1, "a", 1), NOT_FOUND)
        await b.expect(LIST, ok(line(2, "Two", "a", 1)))
        assert server.index.lookup(1) == []


@arun
async def test_claimed_host_port_cannot_be_hijacked() -> None:
    async with index_server() as (server, port):
        a, b = await joined(port, (1, "One", "a", 1)), await Raw.connect(port)
        await b.expect(add(1, "Forged", "a", 1), BAD)
        await b.expect(add(2, "Planted", "a", 1), BAD)
        await b.expect(add(2, "Two", "b", 2), ok(line(2, "Two", "b", 2)))
        await b.close()
        await async_wait_for(lambda: len(server.index) == 1, what="b's record dropped")
        await a.expect(LIST, ok(line(1, "One", "a", 1)))


@arun
async def test_list_while_others_change_the_index() -> None:
    """A LIST long enough to stall on a full socket, while records come and go."""
    async with index_server(roomy()) as (server, port):
        gone = object()
        for rfc in range(1, 20_001):
            server.index.add(gone, rfc, "Some Title Of Moderate Length", "old", 1)
        lister, adder = await Raw.connect(port, rcvbuf=4096), await Raw.connect(port)
        await lister.send(LIST)
        assert await lister.recv(len(OK)) == OK  # the LIST is streaming now
        server.index.drop_owner(gone)  # as if the holder left mid-LIST
        await adder.expect(b"".join(add(n, "New") for n in range(1, 201)),
                           b"".join(ok(line(n, "New")) for n in range(1, 201)))
        lines = []
        while (got := await lister.line()) != b"\r\n":
            lines.append(parse_record(got.rstrip(b"\r\n")))
        assert len(lines) <= 20_000 and all(r.host == "old" for r in lines)
        await lister.expect(LIST, ok(*(line(n, "New") for n in range(200, 0, -1))))


@arun
async def test_reader_gone_mid_list() -> None:
    async with index_server(roomy()) as (server, port):
        for rfc in range(1, 20_001):
            server.index.add("seed", rfc, "Some Title Of Moderate Length", "old", 1)
        lister = await Raw.connect(port, rcvbuf=4096)
        await lister.expect(add(1, "Mine", "l", 5), ok(line(1, "Mine", "l", 5)))
        await lister.send(LIST)
        assert await lister.recv(len(OK)) == OK
        lister.reset()
        await async_wait_for(lambda: server.index.lookup(1)[0].host == "old",
                             what="the lister's record dropped")
        other = await Raw.connect(port)
        await other.expect(lookup(1), ok(line(1, "Some Title Of Moderate Length", "old", 1)))


# ------------------------------------------------------------------------ the quick path
def general_form(request: bytes) -> bytes:
    """The same request in a form only the codec's general path reads (lower-case names)."""
    return request.replace(b"Host:", b"host:").replace(b"Port:", b"port:")


def quick_links(server: object) -> list[bool]:
    return [link._at_rest for link in server.server.links]  # type: ignore[attr-defined]


@arun
async def test_quick_and_general_paths_answer_lookups_alike() -> None:
    async with index_server() as (server, port):
        a = await joined(port, (7, "Seven", "a", 1), (8, "Eight", "a", 1))
        b = await joined(port, (7, "Seven again", "b", 2))
        asker = await Raw.connect(port)
        for rfc, reply in [(7, ok(line(7, "Seven again", "b", 2), line(7, "Seven", "a", 1))),
                           (8, ok(line(8, "Eight", "a", 1))), (9, NOT_FOUND)]:
            assert ci.quick_lookup(lookup(rfc)) == rfc  # this one takes the quick path
            assert ci.quick_lookup(general_form(lookup(rfc))) is None
            await asker.expect(lookup(rfc), reply)
            await asker.expect(general_form(lookup(rfc)), reply)
        assert quick_links(server) == [True, True, True]
        await a.close()
        await async_wait_for(lambda: len(server.index) == 1, what="a's records to go")
        for request in (lookup(8), general_form(lookup(8)), lookup(7)):
            await asker.expect(request, NOT_FOUND if b"8" in request
                               else ok(line(7, "Seven again", "b", 2)))
        await b.close()
        await asker.close()


@arun
async def test_a_lookup_after_part_of_a_request_is_not_answered_quickly() -> None:
    """The quick path only sees reads that start a request: here the LOOKUP's bytes are
    header lines of an unfinished ADD (a framing error), as the general path reads them."""
    partial = b"ADD RFC 5 P2P-CI/1.0\r\nHost: h\r\n"
    async with index_server() as (server, port):
        split = await Raw.connect(port)
        await split.send(partial)
        await async_wait_for(lambda: quick_links(server) == [False],
                             what="the server to hold the partial head")
        await split.send(lookup(5))
        answered = await split.rest()
        whole = await Raw.connect(port)
        await whole.send(partial + lookup(5))
        assert answered == await whole.rest() == BAD


@arun
async def test_pipelined_quick_form_lookups_all_answered_in_order() -> None:
    async with index_server() as (_server, port):
        holder = await joined(port, (7, "Seven", "a", 1))
        asker = await Raw.connect(port)
        replies = ok(line(7, "Seven", "a", 1)) + NOT_FOUND
        await asker.expect(lookup(7) + lookup(9) + lookup(7)[:10], replies)
        await asker.expect(lookup(7)[10:] + lookup(9), ok(line(7, "Seven", "a", 1)) + NOT_FOUND)
        await asker.expect(lookup(7), ok(line(7, "Seven", "a", 1)))  # at rest again
        await holder.close()
        await asker.close()


@arun
async def test_blank_lines_between_requests_start_no_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stray CRLFs between requests (A3) hold nothing of a request, so no head deadline
    starts: a peer that sends one, then only LOOKUPs on the quick path or nothing at all,
    keeps its connection and its records. (Found in review: such a peer was cut off after
    HEAD_TIMEOUT and lost its records.) The connection cut by the short deadline is the
    clock: the quiet peer's CRLF arrived before it stalled."""
    monkeypatch.setattr(limits, "HEAD_TIMEOUT", 0.2)
    async with index_server() as (server, port):
        quiet = await joined(port, (1, "One", "q", 1))
        for _ in range(2):
            await quiet.send(b"\r\n")
            await cut_by_head_deadline(port)
            assert server.index.lookup(1) != []
            await quiet.expect(lookup(1), ok(line(1, "One", "q", 1)))  # the quick path


@arun_steady
async def test_a_client_that_pipelines_and_never_reads_gets_bounded_buffering() -> None:
    """1,000 LOOKUPs in one write, each answered by 500 lines (37 MB in all), and nothing
    read: the server stops taking requests from its buffer while the client is not reading
    (before, every answer piled up in memory), then answers them all, in order, once the
    client reads. The transfer takes what the machine gives it: only a stall fails it."""
    title = "A title long enough to make each answer line about seventy bytes"
    async with index_server(roomy()) as (server, port):
        holders = await Raw.connect(port)
        await holders.send(b"".join(add(7, title, f"h{i}", 1) for i in range(500)))
        await async_wait_for(lambda: len(server.index.lookup(7)) == 500, what="500 holders")
        reader = await Raw.connect(port, rcvbuf=4096)
        await reader.send(general_form(lookup(7)) * 1000)
        link = await async_wait_for(
            lambda: next((lk for lk in server.server.links if lk.paused),
                         None), what="the server to hold back")
        assert link._transport.get_write_buffer_size() < 4 * 1024 * 1024
        answer = len(ok(*(line(7, title, f"h{i}", 1) for i in range(500))))
        reader.writer.get_extra_info("socket").setsockopt(  # read in big steps from now on
            socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        got = await reader.recv_steadily(1000 * answer)
        assert len(got) == 1000 * answer and got.count(OK) == 1000
        await holders.close()
        await reader.close()
