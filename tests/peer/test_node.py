"""A whole peer against a real index server: start-up, GET-then-ADD, surviving a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from p2pshare.index.server import IndexServer
from p2pshare.peer import paths
from p2pshare.peer.node import Peer
from p2pshare.protocol.ci import Record
from p2pshare.samples import write_sample_rfcs

from ..aio import HOST, Raw, arun, free_port, index_server
from ..helpers import async_wait_for


def peer(folder: Path, port: int, name: str) -> Peer:
    return Peer(folder, (HOST, port), hostname=name, upload_host=HOST)


@asynccontextmanager
async def started(folder: Path, port: int, name: str = "peerA") -> AsyncIterator[Peer]:
    """A peer that has started (and registered its RFCs); it leaves on exit."""
    node = peer(folder, port, name)
    await node.start()
    try:
        yield node
    finally:
        await node.aclose()


@arun
async def test_start_registers_every_rfc(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path, {123: 3_000, 791: 4_000})
    async with index_server() as (server, port):
        a = peer(tmp_path, port, "peerA")
        replies = await a.start()
        try:
            assert [r.records for r in replies] == [
                [Record(123, "A Proferred Official ICP", "peerA", a.upload_port)],
                [Record(791, "Internet Protocol", "peerA", a.upload_port)]]
            assert server.index.peers() == [("peerA", a.upload_port)]
        finally:
            await a.aclose()
        await async_wait_for(lambda: len(server.index) == 0, what="records dropped on leave")


@arun
async def test_get_is_lookup_then_get_then_add(tmp_path: Path) -> None:
    files = write_sample_rfcs(tmp_path / "b", {2345: 300_000})
    (tmp_path / "a").mkdir()
    async with (index_server() as (server, port),
                started(tmp_path / "a", port, "localhost") as a,
                started(tmp_path / "b", port, "localhost") as b):
        got = await a.get(2345)
        assert got.lookup.ok and [r.port for r in got.lookup.records] == [b.upload_port]
        assert got.download is not None and got.download.path == tmp_path / "a/rfc2345.txt"
        assert got.download.path.read_bytes() == files[2345].read_bytes()
        title = "Domain Names and Company Name Retrieval"
        assert got.add is not None and got.add.records == [
            Record(2345, title, "localhost", a.upload_port)]
        assert server.index.lookup(2345) == [Record(2345, title, "localhost", a.upload_port),
                                             Record(2345, title, "localhost", b.upload_port)]
        again = (await a.get(2345)).download  # A holds it too now: skip A, ask B
        assert again is not None and [h.port for h, _ in again.attempts] == [b.upload_port]


@arun
async def test_get_of_an_rfc_nobody_has(tmp_path: Path) -> None:
    async with index_server() as (_, port), started(tmp_path, port) as a:
        got = await a.get(9999)
    assert got.lookup.status == 404 and got.download is None and got.add is None
    assert os.listdir(tmp_path) == []


@arun
async def test_get_when_the_only_holder_is_ourselves(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path, {123: 3_000})
    async with index_server() as (_, port), started(tmp_path, port) as a:
        got = await a.get(123)
    assert got.download is not None and got.download.path is None and got.add is None


@arun
async def test_stay_connected_re_registers_after_a_server_restart(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path, {123: 3_000, 791: 4_000})
    first = IndexServer()
    _, port = await first.start(HOST, 0)
    a = peer(tmp_path, port, "peerA")
    await a.start()
    client = a.index
    assert client is not None
    try:
        async with asyncio.TaskGroup() as tg:
            keeper = tg.create_task(a.stay_connected())
            await first.aclose()
            await async_wait_for(lambda: not client.connected, what="the server's leaving seen")
            second = IndexServer()
            await second.start(HOST, port)
            try:
                await async_wait_for(lambda: len(second.index) == 2, what="re-registered")
                assert (await client.list_all()).ok
                assert [r.rfc for r in second.index.lookup(791)] == [791]
            finally:
                keeper.cancel()
                await second.aclose()
    finally:
        await a.aclose()


@arun
async def test_stay_connected_outlives_a_server_that_answers_garbage(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path, {123: 3_000})
    first = IndexServer()
    _, port = await first.start(HOST, 0)
    served = 0

    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        served += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"\x00\xff not a status line\r\n\r\n")
            await writer.drain()
        writer.close()

    async with started(tmp_path, port) as a, asyncio.TaskGroup() as tg:
        keeper = tg.create_task(a.stay_connected())
        await first.aclose()
        impostor = await asyncio.start_server(garble, HOST, port)
        try:
            await async_wait_for(lambda: served >= 2, what="a second try after the garbage")
            assert not keeper.done()
        finally:
            keeper.cancel()
            impostor.close()


@arun
async def test_refused_adds_are_retried_once_the_stale_owner_leaves(tmp_path: Path) -> None:
    """After a quick reconnect the server may still hold our old connection, which owns
    our host:port: the ADDs get 400, and the peer retries until they succeed."""
    write_sample_rfcs(tmp_path, {123: 3_000})
    upload = free_port()
    async with index_server() as (server, port):
        stale = await Raw.connect(port)
        await stale.send(b"ADD RFC 9 P2P-CI/1.0\r\nHost: peerA\r\nPort: %d\r\nTitle: Old\r\n\r\n"
                         % upload)
        await async_wait_for(lambda: server.index.lookup(9), what="the stale record")
        node = Peer(tmp_path, (HOST, port), hostname="peerA", upload_host=HOST,
                    upload_port=upload)
        replies = await node.start()
        try:
            assert [r.status for r in replies] == [400] and node.unregistered == {123}
            async with asyncio.TaskGroup() as tg:
                keeper = tg.create_task(node.stay_connected())
                stale.writer.close()
                await async_wait_for(lambda: server.index.lookup(123), what="the retried ADD")
                keeper.cancel()
            assert server.index.lookup(9) == [] and node.unregistered == set()
        finally:
            await node.aclose()


@arun
async def test_registering_lists_the_folder_off_the_event_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder of 100,000 RFCs takes many seconds to list and title, at the start and after
    # every reconnect: the upload server, on the event loop, must go on serving meanwhile.
    write_sample_rfcs(tmp_path, {123: 3_000})
    threads: list[int] = []
    real = paths.scan

    def scan(folder: Path, skip: tuple[int, ...] = ()) -> dict[int, str]:
        threads.append(threading.get_ident())
        return real(folder, skip)

    monkeypatch.setattr(paths, "scan", scan)
    async with index_server() as (server, port), started(tmp_path, port):
        assert server.index.peers()
    assert threads and threading.get_ident() not in threads
