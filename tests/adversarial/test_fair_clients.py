"""Clients against hostile records and senders (#12): they never trust what they read.

An index (or RS, or tracker) on 127.0.0.1 lists records pointing at hostile holders on
127.0.0.2: a black hole that accepts and never answers, one announcing a body of 10^12
bytes, hosts the resolver cannot encode (a 64-character label, ``a..b``), a title full of
rich markup; the real holder comes last. Each test asserts the victim's outcome: the file
arrives whole from the real holder, each hostile holder fails with its own reason, nothing
is written outside the folder or under a name the sender chose as is, and titles are shown
escaped. No test measures time.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from p2pshare.dipeer.peer import DIPeer
from p2pshare.index.server import IndexServer
from p2pshare.peer.client import download
from p2pshare.peer.holders import Patience
from p2pshare.protocol import di
from p2pshare.protocol.ci import Record
from p2pshare.registry.client import RSClient
from p2pshare.swarm import resume
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.manifest import Manifest, local
from p2pshare.swarm.pieces import full
from p2pshare.swarm.session import Fetch, SwarmPeer
from p2pshare.swarm.storage import hash_file
from p2pshare.swarm.tracker import Tracker

from ..aio import HOST, arun, serving, upload_server
from ..di.net import di_net
from ..helpers import async_wait_for, run_cli

ATTACKER = "127.0.0.2"
BODY = b"RFC 1: the real text\r\n" * 400
LONG_LABEL = "a" * 64 + ".example"
EMPTY_LABEL = "a..b"
MARKUP = "[/x] [bold]not bold"
HUGE = 10**12
QUICK = Patience(stagger=0.05, connect=2.0, first_byte=0.5)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Hostile:
    """A server on 127.0.0.2 that reads a request head, answers ``reply`` (nothing: a black
    hole), then holds the connection until the client closes it; counts open connections."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.open = 0
        self.accepted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.accepted += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            if self.reply:
                writer.write(self.reply)
                await writer.drain()
            await reader.read()  # until the client goes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def listening(handler: Handler, host: str = ATTACKER) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def p2s_index(records: list[Record]) -> Handler:
    """A fake index server: every request on a connection gets ``records`` (200)."""
    body = b"".join(r.to_line() + b"\r\n" for r in records)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"P2P-CI/1.0 200 OK\r\n\r\n" + body + b"\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
    return handle


CI_HUGE = b"P2P-CI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE + b"x" * 4096
CI_404 = b"P2P-CI/1.0 404 Not Found\r\n\r\n"


@asynccontextmanager
async def hostile_ci(tmp_path: Path) -> AsyncIterator[tuple[list[Record], Hostile, Path]]:
    """The CI holders: black hole, huge, two unresolvable hosts, markup title (404), real."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "rfc1.txt").write_bytes(BODY)
    hole, huge, gone = Hostile(), Hostile(CI_HUGE), Hostile(CI_404)
    mine = tmp_path / "mine"
    mine.mkdir()
    async with listening(hole.handle) as hole_port, listening(huge.handle) as huge_port, \
            listening(gone.handle) as gone_port, upload_server(real) as real_port:
        yield [Record(1, "black hole", ATTACKER, hole_port),
               Record(1, "huge", ATTACKER, huge_port),
               Record(1, "long label", LONG_LABEL, 7000),
               Record(1, "empty label", EMPTY_LABEL, 7000),
               Record(1, MARKUP, ATTACKER, gone_port),
               Record(1, "the real one", HOST, real_port)], hole, mine


def outcomes(attempts: list[dict[str, str]]) -> dict[str, str]:
    return {a["peer"]: a["outcome"] for a in attempts}


# ---------------------------------------------------------------------------------- get
@arun
async def test_get_through_hostile_records_gets_the_file_from_the_real_holder(
        tmp_path: Path) -> None:
    async with hostile_ci(tmp_path) as (records, hole, mine), \
            listening(p2s_index(records), HOST) as index_port:
        done = await asyncio.to_thread(run_cli, ["get", "1", "--server", f"{HOST}:{index_port}",
                                                 "--dir", str(mine), "--json"])
        assert done.returncode == 0, done.stderr
        said = outcomes(json.loads(done.stdout)["attempts"])
        await async_wait_for(lambda: hole.open == 0, what="the black hole released")
    assert said[f"{HOST}:{records[-1].port}"] == "200 OK"
    assert said[f"{ATTACKER}:{records[1].port}"].startswith(f"TooLarge: announces {HUGE}")
    assert said[f"{LONG_LABEL}:7000"] == f"skipped: unusable host {LONG_LABEL!r}"
    assert said[f"{EMPTY_LABEL}:7000"] == f"skipped: unusable host {EMPTY_LABEL!r}"
    assert said[f"{ATTACKER}:{records[4].port}"] == "NotServed: 404 Not Found"
    assert hole.accepted == 1  # asked, then cancelled once the real holder answered
    assert (mine / "rfc1.txt").read_bytes() == BODY
    assert os.listdir(mine) == ["rfc1.txt"]  # nothing of the huge body was kept


@arun
async def test_three_black_holes_are_cancelled_when_a_real_holder_answers(
        tmp_path: Path) -> None:
    async with hostile_ci(tmp_path) as (records, _hole, mine):
        holes = [Hostile() for _ in range(3)]
        async with listening(holes[0].handle) as a, listening(holes[1].handle) as b, \
                listening(holes[2].handle) as c:
            black = [Record(1, "hole", ATTACKER, port) for port in (a, b, c)]
            got = await download(mine, 1, [*black, records[-1]], patience=QUICK)
            assert got.path is not None and got.path.read_bytes() == BODY
            assert [(r.port, o) for r, o in got.attempts] == [(records[-1].port, "200 OK")]
            racing = [t for t in asyncio.all_tasks() if "_Race" in repr(t.get_coro())]
            assert racing == []  # no task of the race outlives it
            await async_wait_for(lambda: all(h.open == 0 for h in holes),
                                 what="every black hole's connection closed by the client")
            assert all(h.accepted == 1 for h in holes)


@arun
async def test_black_holes_alone_fail_on_the_first_byte_deadline(tmp_path: Path) -> None:
    holes = [Hostile(), Hostile()]
    async with listening(holes[0].handle) as a, listening(holes[1].handle) as b:
        got = await download(tmp_path, 1, [Record(1, "t", ATTACKER, a),
                                           Record(1, "t", ATTACKER, b)], patience=QUICK)
    assert got.path is None and got.local_error is None
    assert [o for _r, o in got.attempts] == ["TimeoutError: "] * 2
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- list and lookup
TITLES = ["[/x]", "[bold]bold[/bold]", "\x1b[31mred\x1b[0m", "a\rb", "bidi\u202eevil"]


@pytest.mark.parametrize("command", [["list"], ["lookup", "1"]])
@arun
async def test_list_and_lookup_show_hostile_titles_escaped(command: list[str]) -> None:
    records = [Record(1, title, "h[/x]", 7000 + i) for i, title in enumerate(TITLES)]
    async with listening(p2s_index(records), HOST) as port:
        done = await asyncio.to_thread(run_cli, [*command, "--server", f"{HOST}:{port}"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[/x]" in out and "[bold]bold[/bold]" in out and "h[/x]" in out
    assert "\\x1b[31mred\\x1b[0m" in out and "a\\rb" in out and "bidi\\u202eevil" in out
    assert not any(ch in out for ch in "\x1b\r\u202e")


# ------------------------------------------------------------------------------- di-get
DI_HUGE = b"P2P-DI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE + b"x" * 4096
DI_404 = b"P2P-DI/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def di_index(lines: list[di.IndexLine]) -> Hostile:
    body = b"".join(line.to_line() + b"\r\n" for line in lines)
    return Hostile(b"P2P-DI/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


async def register(rs_port: int, host: str, port: int) -> None:
    reply = await RSClient(HOST, rs_port).register(di.PeerAddr(host, port))
    assert reply.status == 200


@arun
async def test_di_get_through_hostile_records_gets_the_file_from_the_real_holder(
        tmp_path: Path) -> None:
    hole, huge, gone = Hostile(), Hostile(DI_HUGE), Hostile(DI_404)
    async with di_net(tmp_path) as net, listening(hole.handle) as hole_port, \
            listening(huge.handle) as huge_port, listening(gone.handle) as gone_port:
        real = await net.peer("real", {9: 5000}, register=False)
        lines = [di.IndexLine(9, "hole", ATTACKER, hole_port, 7200),
                 di.IndexLine(9, "huge", ATTACKER, huge_port, 7200),
                 di.IndexLine(9, "long", LONG_LABEL, 7000, 7200),
                 di.IndexLine(9, "empty", EMPTY_LABEL, 7000, 7200),
                 di.IndexLine(9, MARKUP, ATTACKER, gone_port, 7200),
                 di.IndexLine(9, "real", HOST, real.me.port, 7200)]
        index = di_index(lines)
        async with listening(index.handle) as index_port:
            # PQuery lists peers newest first: registered in this order, a bad host comes
            # first, then the index that names every holder, then the holders, the real
            # one last.
            await real.register()
            for host, port in [(ATTACKER, gone_port), (EMPTY_LABEL, 7000),
                               (ATTACKER, huge_port), (ATTACKER, hole_port),
                               (ATTACKER, index_port), (LONG_LABEL, 7000)]:
                await register(net.rs_port, host, port)
            folder = tmp_path / "mine"
            folder.mkdir()
            me = DIPeer((HOST, net.rs_port), folder, hostname=HOST, bind=HOST,
                        patience=QUICK)
            async with me:
                result = await me.get(9)
            cli_dir = tmp_path / "cli"
            cli_dir.mkdir()
            done = await asyncio.to_thread(run_cli, ["di-get", "9", "--rs",
                                                     f"{HOST}:{net.rs_port}", "--dir",
                                                     str(cli_dir), "--json"])
        await async_wait_for(lambda: hole.open == 0, what="the black hole released")
    steps = "\n".join(result.steps)
    assert result.fetched is not None and result.fetched.source == real.me, steps
    assert result.fetched.path.read_bytes() == (real.folder / "rfc9.txt").read_bytes()
    assert f"RFCQuery {LONG_LABEL}:7000: RemoteProtocolError(\"unusable host" in steps
    assert f"from {LONG_LABEL}:7000: skipped: unusable host" in steps
    assert f"from {EMPTY_LABEL}:7000: skipped: unusable host" in steps
    assert f"from {ATTACKER}:{huge_port}: RemoteProtocolError(" in steps
    assert f"from {ATTACKER}:{gone_port}: 404 Not Found" in steps
    assert os.listdir(folder) == ["rfc9.txt"]
    assert done.returncode == 0, done.stderr
    assert (cli_dir / "rfc9.txt").read_bytes() == (real.folder / "rfc9.txt").read_bytes()


# ---------------------------------------------------------------------------- the swarm
@asynccontextmanager
async def swarm(tmp_path: Path, name: str, size: int = 100_000
                ) -> AsyncIterator[tuple[SwarmPeer, Manifest, bytes]]:
    """A tracker, a seeder sharing ``size`` bytes under a manifest NAMED ``name`` by the
    seeder, and a downloader; yields the downloader, the manifest and the data."""
    data = os.urandom(size)
    path = tmp_path / "seed.bin"
    path.write_bytes(data)
    plain = hash_file(path, 16 * 1024)
    manifest = Manifest(name, plain.size, plain.piece_size, plain.digests)
    async with serving(IndexServer(tracker=Tracker())) as port, \
            SwarmPeer.open(HOST, port, listen=HOST) as seed, \
            SwarmPeer.open(HOST, port, listen=HOST) as me:
        await seed.share(path, manifest)
        sybil = await TrackerClient.connect(HOST, port)  # a peer no resolver can reach
        try:
            await sybil.announce(manifest, EMPTY_LABEL, 7000)
            await sybil.have(manifest.id, full(manifest.count))
            yield me, manifest, data
        finally:
            await sybil.aclose()


async def fetch(me: SwarmPeer, manifest: Manifest, out: Path) -> Path:
    job = Fetch(me, out)
    return await job.run(job.prepare(await job.resolve(manifest.id)))


@pytest.mark.parametrize("name", [".bash_profile", "n" * 240 + ".txt", "CON", "a:b|c?.txt"])
@arun
async def test_fetch_names_the_file_safely(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    async with swarm(tmp_path, name) as (me, manifest, data):
        final = await fetch(me, manifest, out)
    assert final == out / local(name) and final.read_bytes() == data
    assert os.listdir(out) == [local(name)]  # no temporary, resume or lock file left
    assert not final.name.startswith(".") and len(final.name.encode()) <= 255


@pytest.mark.parametrize("name", ["é" * 10 + "n" * 230 + ".txt",  # 244 characters, 254 bytes
                                  "é" * 10 + "n" * 231 + ".txt"])  # 255 bytes, the limit
@arun
async def test_a_long_name_is_shared_and_fetched_under_its_own_name(tmp_path: Path,
                                                                    name: str) -> None:
    """Temporary and resume names come from the swarm id, never from the name, so even a
    name of 255 bytes (the file system's limit) is shared and fetched unchanged."""
    source = tmp_path / "src" / name
    source.parent.mkdir()
    source.write_bytes(os.urandom(50_000))
    manifest = hash_file(source, 16 * 1024)
    assert manifest.name == name
    out = tmp_path / "out"
    async with swarm(tmp_path, manifest.name) as (me, shared, data):
        final = await fetch(me, shared, out)
    assert final == out / name and final.read_bytes() == data
    assert os.listdir(out) == [name]


@arun
async def test_a_symlink_planted_at_the_partial_file_is_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "precious"
    outside.write_bytes(b"keep me")
    async with swarm(tmp_path, "data.bin") as (me, manifest, _data):
        part, _record = resume.paths(out, manifest)
        part.symlink_to(outside)
        with pytest.raises(OSError):
            Fetch(me, out).prepare(manifest)
    assert outside.read_bytes() == b"keep me"


@arun
async def test_symlinks_planted_at_the_resume_record_are_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    targets = [tmp_path / "precious-1", tmp_path / "precious-2"]
    for target in targets:
        target.write_bytes(b"keep me")
    async with swarm(tmp_path, "data.bin") as (me, manifest, data):
        _part, record = resume.paths(out, manifest)
        record.symlink_to(targets[0])
        record.with_name(record.name + ".tmp").symlink_to(targets[1])  # the old fixed name
        final = await fetch(me, manifest, out)
    assert final.read_bytes() == data
    assert [t.read_bytes() for t in targets] == [b"keep me"] * 2


@arun
async def test_di_get_queries_black_hole_peers_ahead_under_short_deadlines(
        tmp_path: Path) -> None:
    """Eight registered peers that accept RFCQuery and never answer, listed before the real
    holder: their RFCQueries run a few ahead under the first-byte deadline, so the download
    ends within the test's few seconds (one at a time with RESPONSE_TIMEOUT, 30 s each,
    it could not: the test's deadline would fail it)."""
    hole = Hostile()
    async with di_net(tmp_path) as net, listening(hole.handle, "0.0.0.0") as hole_port:
        real = await net.peer("real", {9: 5000})  # registered first: listed last
        for n in range(8):  # one listener, eight addresses the RS lists newest first
            await register(net.rs_port, f"127.0.0.{2 + n}", hole_port)
        folder = tmp_path / "mine"
        folder.mkdir()
        me = DIPeer((HOST, net.rs_port), folder, hostname=HOST, bind=HOST, patience=QUICK)
        async with me:
            result = await me.get(9)
        await async_wait_for(lambda: hole.open == 0, what="every black hole released")
    steps = "\n".join(result.steps)
    assert result.fetched is not None and result.fetched.source == real.me, steps
    assert steps.count("TimeoutError()") >= 7, steps  # asked, and given up on
    assert [s.split(":")[0] for s in result.steps[:8]] == [
        f"RFCQuery 127.0.0.{9 - n}" for n in range(8)]  # noted in the order listed
