"""The piece layers of a v2 magnet's big files, asked in chunks (BEP 52 hash requests):
chunks of at most 512 hashes proven against the file's root, a bad proof counted against
its peer and the chunk taken from another, and the seed's answers to chunked requests."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.bt import seeder
from p2pshare.bt.create import Kind
from p2pshare.bt.create import make_torrent as create_torrent
from p2pshare.bt.layers import LayerFetch
from p2pshare.bt.layout import Layout
from p2pshare.bt.metadata import metadata_answer
from p2pshare.bt.session import Seeding, TorrentFetch
from p2pshare.bt.store import TorrentStore, layout_of
from p2pshare.protocol import bt_codec, merkle
from p2pshare.protocol import bt_events as w
from p2pshare.protocol.metainfo import Torrent, format_magnet, magnet_of, parse_torrent

from ..aio import arun
from ..helpers import async_wait_for
from ..swarm.procs import LOCAL, Proc
from . import torrents
from .conftest import COMPLETE, Swarm
from .lt import K, LtPeer, make_torrent, same_tree, write_data
from .ours import P2PShare
from .qbittorrent import QBittorrent

Address = tuple[str, int]
PIECES = 1100  # three chunks: 512, 512 and the last 76 pieces asked as 128


def _big(tmp_path: Path, pieces: int = PIECES) -> tuple[Torrent, Path]:
    """A v2 torrent of one file of ``pieces`` 16 KiB pieces (the last one short)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    data = write_data(data_dir, "big.bin", [pieces * K - 1000])
    return parse_torrent(create_torrent(data, kind=Kind.V2, piece_length=K)), data


def _as_magnet(torrent: Torrent) -> Torrent:
    """``torrent`` as a magnet link's metadata gives it: no piece layers."""
    return dataclasses.replace(torrent, piece_layers={})


def _answer(rows: list[list[bytes]], request: w.HashRequest) -> w.Hashes:
    """A seed's answer, from the rows of the file's whole tree."""
    found = merkle.proof_hashes(rows, request.base_layer, request.index, request.length,
                                request.proof_layers)
    return w.Hashes(request.pieces_root, request.base_layer, request.index, request.length,
                    request.proof_layers, b"".join(found))


def test_chunks_are_aligned_powers_of_two_proven_against_the_root(tmp_path: Path) -> None:
    torrent, data = _big(tmp_path)
    root = torrent.files[0].pieces_root
    assert root is not None
    leaves = merkle.block_hashes(data.read_bytes())
    rows = merkle.tree_rows(leaves)
    layers: dict[bytes, bytes] = {}
    fetch = LayerFetch(layout_of(torrent), layers)
    peer, other = ("127.0.0.1", 1), ("127.0.0.1", 2)
    asked = fetch.pick(peer, (1 << PIECES) - 1, 0.0)
    # 1100 pieces: a layer 2048 wide, 11 levels below the root; libtorrent's chunks
    assert [(r.index, r.length, r.proof_layers) for r in asked] == [
        (0, 512, 10), (512, 512, 10), (1024, 128, 10)]
    assert fetch.pick(other, (1 << PIECES) - 1, 0.0) == []  # each asked of one peer
    first, second, last = (_answer(rows, r) for r in asked)
    assert len(first.hashes) == 32 * (512 + 2)  # two uncles up to the root
    assert len(last.hashes) == 32 * (128 + 4)
    bad = dataclasses.replace(second, hashes=bytes(32) + second.hashes[32:])
    assert fetch.answered(peer, bad) is False  # not proven: another peer's turn
    assert fetch.answered(peer, second) is None  # no longer asked of it
    assert fetch.pick(peer, (1 << PIECES) - 1, 0.0) == []  # never asked of the liar again
    assert fetch.pick(other, 1 << 600, 0.0) == [asked[1]]  # a holder of a piece of it
    fetch.rejected(other, w.HashReject(*dataclasses.astuple(asked[1])), 1.0)
    assert fetch.pick(other, 1 << 600, 1.0) == []  # refused: not asked again at once
    assert fetch.pick(other, 1 << 600, 1.0 + limits.PEER_RETRY_DELAY) == [asked[1]]
    fetch.dropped(other)
    assert fetch.answered(peer, first) and fetch.answered(peer, last)
    assert root not in layers and fetch.wanted
    assert fetch.pick(other, 1 << 600, 9.0) == [asked[1]]
    assert fetch.answered(other, second)
    assert not fetch.wanted
    assert layers[root] == b"".join(merkle.piece_layer(leaves, K))


def test_a_file_of_more_pieces_than_one_request_may_carry() -> None:
    """The case that stalled: more than MAX_BT_HASH_COUNT (8192) pieces, once asked in one
    request, never asked at all. Now 17 chunks, the last one a single hash (as libtorrent
    asks it), every one proven up to the root (14 levels above the piece layer)."""
    pieces = limits.MAX_BT_HASH_COUNT + 1
    layout = Layout([((), pieces * K, False, bytes(32))], K, aligned=True)
    asked = LayerFetch(layout, {}).pick(("127.0.0.1", 1), (1 << pieces) - 1, 0.0)
    assert len(asked) == limits.BT_HASH_REQUESTS  # the budget of one link
    fetch = LayerFetch(layout, {})
    chunks = [c.request for c in fetch.chunks.values()]
    assert [(r.index, r.length) for r in chunks] == [
        *((i, 512) for i in range(0, 8192, 512)), (8192, 1)]
    assert {r.proof_layers for r in chunks} == {13}
    assert [merkle.uncle_count(r.length, 13) for r in chunks[-2:]] == [5, 14]


@asynccontextmanager
async def _seed(torrent: Torrent, data: Path, *, lying: bool = False
                ) -> AsyncIterator[Address]:
    seeding = await Seeding.open(torrent, data.parent)
    if lying:  # its pieces are good, the piece layer it answers with is not
        root = torrent.files[0].pieces_root
        assert root is not None
        layer = seeding.store.layers[root]
        seeding.store.layers[root] = bytes(32) + layer[32:]
    try:
        yield await seeding.serve("127.0.0.1", 0)
    finally:
        await seeding.aclose()


def test_a_v2_magnet_of_a_big_file_gets_its_layer_in_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the whole layer in one request (2048 hashes here, and for a file of more
    than 8192 pieces no request at all: the download stalled). Now chunks of 512."""
    torrent, data = _big(tmp_path)
    asked: list[w.HashRequest] = []
    answer = metadata_answer  # what the seeder calls, before the patch

    def recorded(store: TorrentStore, req: w.MetadataRequest | w.HashRequest) -> w.BtEvent:
        if isinstance(req, w.HashRequest):
            asked.append(req)
        return answer(store, req)

    monkeypatch.setattr(seeder, "metadata_answer", recorded)

    async def main() -> None:
        async with _seed(torrent, data) as address:
            job = TorrentFetch(tmp_path / "out", [address])
            async with asyncio.timeout(60):
                await job.run(job.prepare(_as_magnet(torrent)))

    arun(main)()
    assert same_tree(data, tmp_path / "out" / data.name)
    assert sorted((r.index, r.length) for r in asked) == [(0, 512), (512, 512), (1024, 128)]


def test_a_peer_whose_hashes_do_not_prove_is_banned_and_another_gives_them(
        tmp_path: Path) -> None:
    torrent, data = _big(tmp_path, 700)

    async def main() -> None:
        async with _seed(torrent, data, lying=True) as liar, _seed(torrent, data) as good:
            job = TorrentFetch(tmp_path / "out", [liar])
            download = job.prepare(_as_magnet(torrent))
            async with asyncio.timeout(60), asyncio.TaskGroup() as tg:
                tg.create_task(job.run(download))
                # Alone, the liar's two chunks fail their proofs: two strikes, banned.
                await async_wait_for(lambda: liar in download.banned)
                assert download.layers_wanted
                download.add_peers([good])

    arun(main)()
    assert same_tree(data, tmp_path / "out" / data.name)


# Real processes and libtorrent: files of 16 KiB pieces, more than one chunk wide, the
# last chunk padded (700: 188 pieces asked as 256; 1281: one piece, one hash). 20 MiB
# (1281 pieces) puts the chunks two levels below the root, where libtorrent, knowing the
# node above a chunk from an earlier proof, asks fewer proof layers than the full climb.
LT_PIECES = {"two chunks": 700, "chunks two levels down": 1281}


def _lt_v2(tmp_path: Path, pieces: int) -> tuple[Path, bytes]:
    data = write_data(tmp_path, "big.bin", [pieces * K - 7])
    return data, make_torrent(data, "v2", piece_size=K)


def _p2pshare_seed(tmp_path: Path, raw: bytes, data: Path) -> tuple[Proc, int]:
    torrent = tmp_path / "big.torrent"
    torrent.write_bytes(raw)
    seed = Proc(["seed", str(torrent), "--dir", str(data.parent), *LOCAL], tmp_path / "logs")
    return seed, int(seed.wait_line(r" port (\d+)$").group(1))


def _fetch_magnet(tmp_path: Path, raw: bytes, port: int) -> None:
    link = format_magnet(magnet_of(parse_torrent(raw)))
    Proc(["fetch", link, "--out", str(tmp_path / "out"), "--peer", f"127.0.0.1:{port}",
          "--no-upload", *LOCAL], tmp_path / "logs").finish()


@pytest.mark.parametrize("pieces", LT_PIECES.values(), ids=LT_PIECES.keys())
def test_p2pshare_fetches_a_big_v2_magnet_from_libtorrent(tmp_path: Path, pieces: int) -> None:
    data, raw = _lt_v2(tmp_path, pieces)
    theirs = LtPeer(tmp_path, torrent=raw, seed=True)
    try:
        _fetch_magnet(tmp_path, raw, theirs.port)
    finally:
        theirs.close()
    assert same_tree(data, tmp_path / "out" / data.name)


def test_p2pshare_fetches_a_big_v2_magnet_from_p2pshare(tmp_path: Path) -> None:
    data, raw = _lt_v2(tmp_path, LT_PIECES["chunks two levels down"])
    seed, port = _p2pshare_seed(tmp_path, raw, data)
    try:
        _fetch_magnet(tmp_path, raw, port)
    finally:
        seed.stop()
    assert same_tree(data, tmp_path / "out" / data.name)


@pytest.mark.parametrize("pieces", LT_PIECES.values(), ids=LT_PIECES.keys())
def test_libtorrent_fetches_a_big_v2_magnet_from_p2pshare(tmp_path: Path, pieces: int) -> None:
    """Before: our seed answered proof layers as a count of uncles, so libtorrent's second
    chunk of a file two levels of chunks deep came with one uncle too many and was
    refused, and its download never ended."""
    data, raw = _lt_v2(tmp_path, pieces)
    seed, port = _p2pshare_seed(tmp_path, raw, data)
    save = tmp_path / "lt-out"
    save.mkdir()
    try:
        theirs = LtPeer(save, magnet=format_magnet(magnet_of(parse_torrent(raw))))
        try:
            theirs.connect(port)
            theirs.wait_seeding(60)
        finally:
            theirs.close()
    finally:
        seed.stop()
    assert same_tree(data, save / data.name)


@pytest.mark.parametrize("seeder", ["p2pshare", "qbittorrent"])
def test_qbittorrent_and_p2pshare_share_a_big_v2_magnet(swarm: Swarm, seeder: str) -> None:
    """qBittorrent 4.5 (libtorrent 2.0) through the tracker, each way; before, it never
    finished a v2 magnet of 1281 pieces from a p2pshare seed (the proof layers above)."""
    folder = swarm.work / "content"
    content = torrents.make_content(folder, "big.bin", size=LT_PIECES["chunks two levels down"]
                                    * K - 7)
    make = torrents.made_by_p2pshare if seeder == "p2pshare" else torrents.make_torrent
    torrent = make(content, "v2", [swarm.tracker.http], folder.with_suffix(".torrent"), K)
    swarm.torrents.append(torrent)
    ours, theirs = swarm.client(P2PShare), swarm.client(QBittorrent)
    seed, leech = (ours, theirs) if seeder == "p2pshare" else (theirs, ours)
    out = swarm.out(type(leech).name)
    swarm.start(torrent, [seed], {leech: out}, magnet=True)
    leech.wait_complete(COMPLETE)
    assert torrents.same_content(out / torrent.name, torrent.content)



class _Asker:
    """A downloader on a real connection to a seed of ``torrent``, past the handshakes (the
    v2 bit set, no extension protocol) and unchoked: it asks for blocks and piece layers
    of the torrent's files, and reads the answers in the order they come."""

    def __init__(self, torrent: Torrent) -> None:
        self.torrent = torrent
        self.files = [f for f in torrent.files if f.pieces_root is not None]
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(bt_codec.encode_handshake(w.Handshake(
            self.torrent.handshake_hash, os.urandom(20),
            w.reserved_bits(extended=False, v2=True))) + bt_codec.encode_message(w.Interested()))
        await self.reader.readexactly(68)  # its handshake
        await self.next_of(w.Unchoke)

    def close(self) -> None:
        self.writer.close()

    def block(self, file: int, piece: int) -> w.BtRequest:
        """The first block of piece ``piece`` of file ``file`` (v2: files start pieces)."""
        first = sum(-(-f.length // self.torrent.piece_length) for f in self.files[:file])
        return w.BtRequest(first + piece, 0, K)

    def layer(self, file: int, index: int = 0, length: int = 0) -> w.HashRequest:
        """The piece layer of file ``file``: ``length`` hashes from ``index`` (with the
        proof up to the root), or the whole layer."""
        pieces = -(-self.files[file].length // self.torrent.piece_length)
        root = self.files[file].pieces_root
        assert root is not None
        length = length or merkle.width(pieces)
        proof = (merkle.width(pieces) // length).bit_length() - 1
        return w.HashRequest(root, merkle.piece_height(self.torrent.piece_length), index,
                             length, proof)

    def send(self, *events: w.BtEvent) -> None:
        """``events`` in one write."""
        self.writer.write(b"".join(bt_codec.encode_message(e) for e in events))

    async def next_of(self, *kinds: type) -> w.BtEvent:
        """The next message of one of ``kinds`` (others read and passed over)."""
        async with asyncio.timeout(20):
            while True:
                size = int.from_bytes(await self.reader.readexactly(4), "big")
                body = await self.reader.readexactly(size) if size else b""
                event = bt_codec.decode_message(body[0], body[1:]) if body else None
                if isinstance(event, kinds):
                    assert event is not None
                    return event


@asynccontextmanager
async def _asking(torrent: Torrent, port: int) -> AsyncIterator[_Asker]:
    asker = _Asker(torrent)
    await asker.open(port)
    try:
        yield asker
    finally:
        asker.close()


def _two_files(tmp_path: Path, kind: str) -> tuple[bytes, Torrent]:
    """A torrent (by libtorrent) of two files of 6 and 3 pieces of 32 KiB."""
    raw = make_torrent(write_data(tmp_path, "d", [5 * 2 * K + 7, 3 * 2 * K]), kind)
    return raw, parse_torrent(raw)


@asynccontextmanager
async def _our_seed(torrent: Torrent, tmp_path: Path,
                    rate_limit: float | None = None) -> AsyncIterator[int]:
    seeding = await Seeding.open(torrent, tmp_path, rate_limit=rate_limit)
    try:
        _, port = await seeding.serve("127.0.0.1", 0)
        yield port
    finally:
        await seeding.aclose()


@pytest.mark.parametrize("kind", ["hybrid", "v2"])
def test_a_piece_layer_asked_with_a_block_leaves_before_the_block(tmp_path: Path,
                                                                 kind: str) -> None:
    """A v2 downloader asks for a file's piece layer and for blocks of the file together
    (libtorrent and qBittorrent do); the seed answers the layer first, as libtorrent's seed
    does (its blocks wait for a disk read), so every block can be checked as it arrives.
    Before, our seed answered in the order asked, and qBittorrent 4.5.2 (libtorrent 2.0.8)
    put a hybrid torrent in its error state in a few percent of the interop runs, each time
    after a piece had arrived whole before its file's layer."""
    raw, torrent = _two_files(tmp_path, kind)
    theirs = LtPeer(tmp_path, torrent=raw, seed=True)
    first: dict[str, type] = {}

    async def first_of(port: int) -> type:
        async with _asking(torrent, port) as peer:
            peer.send(peer.block(0, 2), peer.layer(0))
            return type(await peer.next_of(w.Piece, w.Hashes))

    async def main() -> None:
        async with _our_seed(torrent, tmp_path) as port:
            first["ours"] = await first_of(port)
        first["libtorrent"] = await first_of(theirs.port)

    try:
        arun(main)()
    finally:
        theirs.close()
    assert first == {"libtorrent": w.Hashes, "ours": w.Hashes}


@pytest.mark.parametrize("rate_limit", [None, 50e6], ids=["unlimited", "rate-limited"])
def test_blocks_of_a_file_wait_for_its_layer_once_the_peer_asks_for_layers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rate_limit: float | None) -> None:
    """A peer that asked for one file's layer and then for a block of another file gets
    that file's layer first when it asks for it later (the block waited for it), and a
    block of a proven piece meanwhile; a peer that never asks for a layer (it has the
    .torrent) is sent its block at once; a layer asked for in chunks proves only the
    chunk's pieces; and a block whose layer is never asked for goes once
    ``BT_LAYER_WAIT`` has passed, after blocks asked for later whose layer was sent."""
    _, torrent = _two_files(tmp_path, "hybrid")
    order: list[tuple[type, int]] = []

    def seen(event: w.BtEvent) -> None:
        order.append((type(event), event.index if isinstance(event, w.Piece) else -1))

    async def main() -> None:
        async with _our_seed(torrent, tmp_path, rate_limit) as port:
            monkeypatch.setattr(limits, "BT_LAYER_WAIT", 3600.0)  # held for the test's life
            async with _asking(torrent, port) as peer:
                peer.send(peer.layer(0), peer.block(1, 1))
                await peer.next_of(w.Hashes)  # file 0's layer: the block waits
                peer.send(peer.block(0, 3))  # a proven piece: goes at once
                seen(await peer.next_of(w.Piece, w.Hashes))
                peer.send(peer.layer(1))
                seen(await peer.next_of(w.Piece, w.Hashes))
                seen(await peer.next_of(w.Piece, w.Hashes))
            async with _asking(torrent, port) as peer:
                peer.send(peer.block(1, 1))  # no layer asked on this link: no wait
                seen(await peer.next_of(w.Piece, w.Hashes))
            async with _asking(torrent, port) as peer:  # chunks: pieces 0-1, then 4-5
                peer.send(peer.layer(0, 0, 2), peer.block(0, 4), peer.block(0, 1))
                seen(await peer.next_of(w.Piece, w.Hashes))
                seen(await peer.next_of(w.Piece, w.Hashes))
                peer.send(peer.layer(0, 4, 2))
                seen(await peer.next_of(w.Piece, w.Hashes))
                seen(await peer.next_of(w.Piece, w.Hashes))
            monkeypatch.setattr(limits, "BT_LAYER_WAIT", 1.0)
            async with _asking(torrent, port) as peer:
                peer.send(peer.layer(0), peer.block(1, 1))
                await peer.next_of(w.Hashes)
                peer.send(peer.block(0, 2))
                seen(await peer.next_of(w.Piece))
                seen(await peer.next_of(w.Piece))  # once the wait is over

    arun(main)()
    assert order == [(w.Piece, 3), (w.Hashes, -1), (w.Piece, 7),
                     (w.Piece, 7),
                     (w.Hashes, -1), (w.Piece, 1), (w.Hashes, -1), (w.Piece, 4),
                     (w.Piece, 2), (w.Piece, 7)]


def test_a_cancel_takes_back_only_the_request_it_names(tmp_path: Path) -> None:
    """Two requests at the same place, of 16 KiB and of 1,000 bytes (both valid), and a
    cancel of the short one, in one write: the seed rejects the short one (BEP 6) and
    still sends the other (the queue once matched a cancel by place only, and dropped
    both, leaving the 16 KiB request unanswered and counted against the peer's budget)."""
    _, torrent = _two_files(tmp_path, "hybrid")
    answers: list[w.BtEvent] = []

    async def main() -> None:
        async with _our_seed(torrent, tmp_path) as port, _asking(torrent, port) as peer:
            peer.send(w.BtRequest(2, 0, K), w.BtRequest(2, 0, 1000), w.Cancel(2, 0, 1000))
            answers.append(await peer.next_of(w.Piece, w.RejectRequest))
            answers.append(await peer.next_of(w.Piece, w.RejectRequest))

    arun(main)()
    assert [type(a) for a in answers] == [w.RejectRequest, w.Piece]
    reject, piece = answers
    assert isinstance(reject, w.RejectRequest) and isinstance(piece, w.Piece)
    assert (reject.index, reject.begin, reject.length) == (2, 0, 1000)
    assert (piece.index, piece.begin, len(piece.block)) == (2, 0, K)
