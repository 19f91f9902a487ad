"""A peer's client roles over real sockets: the index connection, and GET with fallback."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from p2pshare.errors import AlreadyClosed, P2PError, PeerGone
from p2pshare.peer.client import IndexClient, NotServed, download, fetch_from
from p2pshare.protocol.ci import Record

from ..aio import HOST, arun, free_port, index_server, upload_server
from ..di.net import fake_peer as canned_server

BODY = b"The text of RFC 2345\r\n" * 1000


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(a folder holding rfc2345.txt, an empty folder to serve, the download folder)."""
    full, empty, mine = tmp_path / "full", tmp_path / "empty", tmp_path / "mine"
    for folder in (full, empty, mine):
        folder.mkdir()
    (full / "rfc2345.txt").write_bytes(BODY)
    return full, empty, mine


def holder(port: int) -> Record:
    return Record(2345, "Domain Names and Company Name Retrieval", HOST, port)


def assert_only(folder: Path, *names: str) -> None:
    """``folder`` holds exactly ``names``: no temporary file was left behind."""
    assert sorted(os.listdir(folder)) == sorted(names)


# ------------------------------------------------------------------------ download
@arun
async def test_download_falls_back_past_dead_and_404_holders(
        dirs: tuple[Path, Path, Path]) -> None:
    full, empty, mine = dirs
    async with upload_server(empty) as lacking, upload_server(full) as having:
        result = await download(mine, 2345, [holder(free_port()), holder(lacking),
                                             holder(having)])
    assert result.path == mine / "rfc2345.txt" and result.size == len(BODY)
    assert result.path.read_bytes() == BODY
    outcomes = [outcome for _, outcome in result.attempts]
    assert outcomes[0].startswith("PeerGone") and "404" in outcomes[1]
    assert outcomes[2] == "200 OK"
    assert_only(mine, "rfc2345.txt")


@arun
async def test_download_skips_ourselves(dirs: tuple[Path, Path, Path]) -> None:
    full, _, mine = dirs
    async with upload_server(full) as port:
        result = await download(mine, 2345, [holder(port)], skip=(HOST, port))
    assert result.path is None and result.attempts == []
    assert_only(mine)


@arun
async def test_no_holder_can_send_it(dirs: tuple[Path, Path, Path]) -> None:
    _, empty, mine = dirs
    async with upload_server(empty) as lacking:
        result = await download(mine, 2345, [holder(lacking), holder(free_port())])
        with pytest.raises(NotServed) as caught:
            await fetch_from(mine, 2345, HOST, lacking)
    assert result.path is None and len(result.attempts) == 2
    assert caught.value.status == 404
    assert_only(mine)


HALF = (b"P2P-CI/1.0 200 OK\r\nDate: Wed, 12 Feb 2009 15:12:05 GMT\r\nOS: x\r\n"
        b"Last-Modified: Thu, 21 Jan 2001 9:23:46 GMT\r\nContent-Length: %d\r\n"
        b"Content-Type: text/plain\r\n\r\n" % len(BODY)) + BODY[: len(BODY) // 2]


@arun
async def test_download_cut_half_way_leaves_nothing(dirs: tuple[Path, Path, Path]) -> None:
    full, _, mine = dirs
    async with canned_server(HALF) as cut:
        with pytest.raises(P2PError):
            await fetch_from(mine, 2345, HOST, cut)
        assert_only(mine)
        async with upload_server(full) as good:
            result = await download(mine, 2345, [holder(cut), holder(good)])
    assert result.attempts[0][1].startswith("PeerGone")
    assert (mine / "rfc2345.txt").read_bytes() == BODY
    assert_only(mine, "rfc2345.txt")


@arun
async def test_failed_download_keeps_an_older_copy(dirs: tuple[Path, Path, Path]) -> None:
    _, _, mine = dirs
    (mine / "rfc2345.txt").write_bytes(b"old copy")
    async with canned_server(HALF) as cut:
        result = await download(mine, 2345, [holder(cut)])
    assert result.path is None
    assert (mine / "rfc2345.txt").read_bytes() == b"old copy"
    assert_only(mine, "rfc2345.txt")


@pytest.mark.parametrize("reply", [
    # the handout's own example: no blank line before the data, text/text, 1-digit hour
    b"P2P-CI/1.0 200 OK\r\nDate: Wed, 12 Feb 2009 15:12:05 GMT\r\nOS: Mac OS 10.2.1\r\n"
    b"Last-Modified: Thu, 21 Jan 2001 9:23:46 GMT\r\nContent-Length: 11\r\n"
    b"Content-Type: text/text\r\nhello world",
    # no Content-Length: the body runs until the close
    b"P2P-CI/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world",
    # bare LF line ends, and bytes after Content-Length are not part of the file
    b"P2P-CI/1.0 200 OK\nContent-Length: 11\n\nhello worldEXTRA",
], ids=["handout-example", "until-close", "bare-lf"])
@arun
async def test_tolerated_get_replies(dirs: tuple[Path, Path, Path], reply: bytes) -> None:
    _, _, mine = dirs
    async with canned_server(reply) as port:
        assert await fetch_from(mine, 7, HOST, port) == 11
    assert (mine / "rfc7.txt").read_bytes() == b"hello world"
    assert_only(mine, "rfc7.txt")


# ------------------------------------------------------------------------ index client
@arun
async def test_index_client_exchanges_exact_bytes() -> None:
    async with index_server() as (_, port):
        client = IndexClient(HOST, port, "thishost.csc.ncsu.edu", 5678)
        await client.connect()
        added = await client.add(123, "A Proferred Official ICP")
        assert added.sent == (b"ADD RFC 123 P2P-CI/1.0\r\nHost: thishost.csc.ncsu.edu\r\n"
                              b"Port: 5678\r\nTitle: A Proferred Official ICP\r\n\r\n")
        assert added.received == (b"P2P-CI/1.0 200 OK\r\n\r\nRFC 123 A Proferred Official "
                                  b"ICP thishost.csc.ncsu.edu 5678\r\n\r\n")
        mine = Record(123, "A Proferred Official ICP", "thishost.csc.ncsu.edu", 5678)
        assert added.ok and added.records == [mine]
        assert (await client.lookup(123)).records == [mine]
        assert (await client.list_all()).sent == (b"LIST ALL P2P-CI/1.0\r\nHost: "
                                                  b"thishost.csc.ncsu.edu\r\nPort: 5678\r\n\r\n")
        missing = await client.lookup(3457, "Requirements for IPsec Remote Access Scenarios")
        assert (missing.status, missing.reason, missing.records) == (404, "Not Found", [])
        assert (await client.remove(123)).records == [mine]
        assert (await client.list_all()).records == []
        await client.aclose()


@pytest.mark.parametrize("reply", [
    b"P2P-CI/1.0 200 OK\r\nRFC 1 One h 5\r\nRFC 2 Two h 5\r\n\r\n",  # A1: no blank line
    b"P2P-CI/1.0 200 OK\r\n\r\nRFC 1 One h 5\r\nRFC 2 Two h 5\r\n",  # A2: ends by closing
    b"P2P-CI/1.0 200 OK\n\nRFC 1 One h 5\n2 Two h 5\n\n",  # bare LF; "RFC" missing
], ids=["A1", "A2-close", "lf"])
@arun
async def test_index_client_tolerates_other_servers(reply: bytes) -> None:
    async with canned_server(reply) as port:
        client = IndexClient(HOST, port, "me", 1)
        await client.connect()
        listed = await client.list_all()
        await client.aclose()
    assert [(r.rfc, r.title) for r in listed.records] == [(1, "One"), (2, "Two")]


@arun
async def test_exchanges_interrupt_the_idle_watch() -> None:
    async with index_server() as (server, port):
        client = IndexClient(HOST, port, "me", 1)
        await client.connect()
        async with asyncio.TaskGroup() as tg:
            watch = tg.create_task(client.wait_closed())
            for rfc in range(1, 6):
                assert (await client.add(rfc, f"T{rfc}")).ok
            assert len((await client.list_all()).records) == 5
            assert not watch.done()
            await server.aclose()  # the server goes away: the watch notices
        assert not client.connected
        with pytest.raises(PeerGone):
            await client.lookup(1)


@arun
async def test_a_client_we_closed_says_so() -> None:
    """After ``aclose`` (the peer left) a request is our misuse, not the server going away
    (that is ``PeerGone``: the test above); ``connect`` joins again."""
    async with index_server() as (_, port):
        client = IndexClient(HOST, port, "me", 1)
        await client.connect()
        await client.aclose()
        with pytest.raises(AlreadyClosed):
            await client.list_all()
        await client.connect()
        assert (await client.add(1, "One")).ok
        await client.aclose()


@arun
async def test_unreachable_index_server() -> None:
    client = IndexClient(HOST, free_port(), "me", 1)
    with pytest.raises(PeerGone):
        await client.connect()
    assert not client.connected
