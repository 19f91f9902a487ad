"""The last block of each file of a v2 torrent, asked for whole (qBittorrent 4.5).

libtorrent 2.0 (inside qBittorrent 4.5) reads a v2 torrent as if a pad file followed
every file up to a piece boundary, so it asks for the block that holds a file's end as
16 KiB, past the end of the file's last piece. The seed closed the connection on that
request ("runs past piece"), and qBittorrent stalled wherever it had got to (about 18% in
the interop test, docs/bittorrent.md#interoperability). Now the seed answers the block
whole: the file's bytes, then zeros (and the short piece as BEP 52 has it, as libtorrent
2.1 asks for it, as before).
"""

from __future__ import annotations

from pathlib import Path

from p2pshare.bt.create import Kind
from p2pshare.bt.create import make_torrent as create_torrent
from p2pshare.protocol import bt_events as w
from p2pshare.protocol.bt_wire import BtConnection, ConnectionClosed
from p2pshare.protocol.metainfo import parse_torrent

from ..aio import arun
from .lt import K, write_data
from .test_hostile import _seed, _talk

SIZES = [70000, 30000]  # 64 KiB pieces: the files end in pieces 1 (4,464 bytes) and 2


def test_a_seed_answers_the_last_block_of_each_v2_file_whole(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data = write_data(data_dir, "d", SIZES)
    torrent = parse_torrent(create_torrent(data, kind=Kind.V2, piece_length=4 * K))
    first = (data / "f0.bin").read_bytes()
    second = (data / "sub" / "f1.bin").read_bytes()
    wanted = {w.BtRequest(1, 0, K): first[4 * K:] + bytes(5 * K - len(first)),
              w.BtRequest(1, 0, len(first) - 4 * K): first[4 * K:],  # as BEP 52 has it
              w.BtRequest(2, K, K): second[K:] + bytes(2 * K - len(second))}
    got: dict[w.BtRequest, bytes] = {}

    def answer(conn: BtConnection, event: w.BtEvent | ConnectionClosed) -> bytes:
        if isinstance(event, w.HaveAll):
            return conn.send(w.Interested())
        if isinstance(event, w.Unchoke):
            return b"".join(map(conn.send, wanted))
        if isinstance(event, w.Piece):
            got[w.BtRequest(event.index, event.begin, len(event.block))] = event.block
        return b""

    async def main() -> None:
        async with _seed(torrent, data) as address:
            await _talk(address, torrent, answer, lambda: len(got) >= len(wanted))

    arun(main)()
    assert got == wanted
