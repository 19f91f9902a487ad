"""bt.mixed.compatible: which swarms can feed a torrent's download (one file, one cut)."""

from __future__ import annotations

from p2pshare.bt.layout import Layout
from p2pshare.bt.mixed import compatible
from p2pshare.swarm.manifest import Manifest, TreeFile

K = 16 * 1024


def _manifest(size: int, piece: int, files: tuple[TreeFile, ...] = ()) -> Manifest:
    return Manifest("f.bin", size, piece, tuple(bytes(32) for _ in range(-(-size // piece))),
                    files)


def test_a_single_file_with_the_same_piece_size_maps() -> None:
    for aligned in (False, True):  # v1, and v2 or hybrid
        layout = Layout([((), 5 * K + 1, False, None)], 2 * K, aligned=aligned)
        assert compatible(_manifest(5 * K + 1, 2 * K), layout) is None


def test_other_cuts_do_not() -> None:
    layout = Layout([((), 5 * K + 1, False, None)], 2 * K, aligned=False)
    assert "pieces" in str(compatible(_manifest(5 * K + 1, K), layout))
    assert "bytes" in str(compatible(_manifest(5 * K, 2 * K), layout))
    folder = Layout([(("a",), K, False, None), (("b",), K, False, None)], K, aligned=True)
    assert "single file" in str(compatible(_manifest(2 * K, K), folder))
    files = (TreeFile("a", K), TreeFile("b", K))
    assert "single file" in str(compatible(_manifest(2 * K, K, files), layout))
