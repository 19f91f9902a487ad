"""bt/create against libtorrent: the same info dictionary, byte for byte, for v1, v2 and hybrid.

libtorrent (the PyPI wheel, in the test extra) makes a torrent of the same file or folder
with the same piece size; the bencoded info dictionaries and the piece layers must be
equal, and libtorrent must read ours with the info-hashes we computed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.bt.create import SIZE_TABLE, Kind, default_piece_length, make_torrent
from p2pshare.errors import LocalProtocolError
from p2pshare.protocol import bencode
from p2pshare.protocol.metainfo import parse_torrent

lt: Any = pytest.importorskip("libtorrent", reason="the libtorrent wheel (test extra)")

FLAGS = {Kind.V1: "v1_only", Kind.V2: "v2_only", Kind.HYBRID: None}
SIZES = {  # sizes that need pads of several lengths, and none
    "a/one.bin": 40_000, "a/empty": 0, "a/deep/er/x": 16_384, "a/deep/y": 16_385,
    "b.txt": 5, "c": 100_000, ".hidden": 1234, "tool": 3 * 16_384 + 1}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lt") / "share"
    for name, size in SIZES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    (root / "tool").chmod(0o755)
    (root / "empty-folder").mkdir()
    return root


def libtorrent_torrent(path: Path, kind: Kind, piece_length: int) -> dict[bytes, Any]:
    flag = FLAGS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        creator = lt.create_torrent(lt.list_files(str(path)), piece_length,
                                    flags=getattr(lt.create_torrent, flag) if flag else 0)
        lt.set_piece_hashes(creator, str(path.parent))
    made: dict[bytes, Any] = creator.generate()
    return made


def compare(path: Path, kind: Kind, piece_length: int, *, load: bool = True) -> None:
    """Ours and libtorrent's torrent of ``path``; ``load``: libtorrent reads ours too."""
    theirs = libtorrent_torrent(path, kind, piece_length)
    ours = bencode.decode(make_torrent(path, kind=kind, piece_length=piece_length or None),
                          max_size=1 << 30)
    assert isinstance(ours, dict)
    assert bencode.encode(ours[b"info"]) == lt.bencode(theirs[b"info"])
    assert ours.get(b"piece layers") == theirs.get(b"piece layers")
    if not load:
        return
    hashes = lt.torrent_info(bencode.encode(ours)).info_hashes()
    torrent = parse_torrent(bencode.encode(ours))
    assert torrent.v1_hash == (hashes.v1.to_bytes() if hashes.has_v1() else None)
    assert torrent.v2_hash == (hashes.v2.to_bytes() if hashes.has_v2() else None)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
@pytest.mark.parametrize("piece_length", [16_384, 65_536, 0], ids=["16K", "64K", "default"])
def test_folder_like_libtorrent(folder: Path, kind: Kind, piece_length: int) -> None:
    compare(folder, kind, piece_length)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
@pytest.mark.parametrize("name", ["c", "b.txt", "tool", "a/deep/er/x", "a"])
def test_single_file_and_subfolder_like_libtorrent(folder: Path, kind: Kind, name: str) -> None:
    compare(folder / name, kind, 16_384)


_names = st.text(st.sampled_from("ab.-_ Zé本"), min_size=1, max_size=4).filter(
    lambda n: n not in (".", ".."))
_trees = st.dictionaries(st.lists(_names, min_size=1, max_size=3).map(tuple),
                         st.sampled_from([0, 1, 100, 16_383, 16_384, 16_385, 40_000]),
                         min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees, st.sampled_from(list(Kind)))
def test_random_folders_like_libtorrent(tree: dict[tuple[str, ...], int], kind: Kind) -> None:
    """Any folder of files (names that sort around each other and around "/", sizes
    around a piece): the same info dictionary as libtorrent's."""
    paths = sorted(tree)
    if any(p[: len(q)] == q for p in paths for q in paths if len(q) < len(p)):
        return  # a file where another needs a folder: not a folder on disk
    if sum(tree.values()) == 0:
        return  # libtorrent refuses it too (test_nothing_to_share)
    temp = Path(tempfile.mkdtemp())
    try:
        for path, size in tree.items():
            (temp / "top").joinpath(*path[:-1]).mkdir(parents=True, exist_ok=True)
            (temp / "top").joinpath(*path).write_bytes(os.urandom(size))
        compare(temp / "top", kind, 16_384, load=False)
    finally:
        shutil.rmtree(temp)


def test_file_beside_a_folder_of_its_stem(tmp_path: Path) -> None:
    """``a.txt`` sorts before ``a/b`` as a path string (``.`` < ``/``) but after the folder
    ``a`` in the file tree: the same bytes as libtorrent, and we read our hybrid (which
    libtorrent 2.1.1 itself refuses to load: docs/bittorrent.md#create)."""
    (tmp_path / "top" / "a").mkdir(parents=True)
    (tmp_path / "top" / "a.txt").write_bytes(b"x" * 20_000)
    (tmp_path / "top" / "a" / "b").write_bytes(b"y" * 30_000)
    compare(tmp_path / "top", Kind.HYBRID, 16_384, load=False)
    torrent = parse_torrent(make_torrent(tmp_path / "top", piece_length=16_384))
    assert [f.path for f in torrent.files if not f.pad] == [("top", "a.txt"), ("top", "a", "b")]
    assert all(f.offset % 16_384 == 0 for f in torrent.files if not f.pad)


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / os.fsdecode(b"bad\xff")).write_bytes(b"x")
    with pytest.raises(LocalProtocolError, match="UTF-8"):
        make_torrent(tmp_path / "top")


@pytest.mark.parametrize("total", [1, *SIZE_TABLE, SIZE_TABLE[-1] + 1, 10**13])
def test_default_piece_length_is_libtorrents(total: int) -> None:
    for size in (total, total + 1):
        creator = lt.create_torrent([lt.create_file_entry("f", size)], 0,
                                    flags=lt.create_torrent.v2_only)
        assert default_piece_length(size) == creator.piece_length()


def test_nothing_to_share(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(LocalProtocolError):
        make_torrent(tmp_path)
    with pytest.raises(LocalProtocolError):
        make_torrent(tmp_path / "empty")
    (tmp_path / "full").write_bytes(b"x")
    with pytest.raises(LocalProtocolError):
        make_torrent(tmp_path, piece_length=3 * 16_384)
    with (tmp_path / "sparse").open("wb") as sparse:  # 2**21 + 1 pieces, no data written
        sparse.truncate((limits.MAX_TORRENT_PIECES + 1) * 16_384)
    with pytest.raises(LocalProtocolError, match="pieces"):
        make_torrent(tmp_path / "sparse", piece_length=16_384)
