"""Metainfo: torrents built by hand (v1, v2, hybrid) read back, and every hostile shape refused."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import merkle
from p2pshare.protocol.bencode import BencodeError, Value, encode
from p2pshare.protocol.metainfo import parse_info, parse_torrent

PIECE = 16 * 1024
Info = dict[bytes, Value]


def v2_leaf(data: bytes) -> tuple[Value, bytes | None]:
    """A file tree leaf for ``data`` and its piece layer (None when one piece or less)."""
    leaves = merkle.block_hashes(data)
    root = merkle.file_root(leaves, PIECE)
    leaf: dict[bytes, Value] = {b"length": len(data)}
    if root is not None:
        leaf[b"pieces root"] = root
    layer = b"".join(merkle.piece_layer(leaves, PIECE)) if len(data) > PIECE else None
    return {b"": leaf}, layer


def hybrid(contents: dict[str, bytes]) -> tuple[Info, dict[bytes, Value]]:
    """A hybrid multi-file info dictionary (pad after each file) and its piece layers."""
    tree: dict[bytes, Value] = {}
    files: list[Value] = []
    layers: dict[bytes, Value] = {}
    space = b""
    for name, data in sorted(contents.items()):
        tree[name.encode()], layer = v2_leaf(data)
        files.append({b"length": len(data), b"path": [name.encode()]})
        space += data
        if layer is not None:
            layers[merkle.file_root(merkle.block_hashes(data), PIECE) or b""] = layer
        if len(space) % PIECE:
            pad = PIECE - len(space) % PIECE
            files.append({b"attr": b"p", b"length": pad, b"path": [b".pad", b"%d" % pad]})
            space += bytes(pad)
    pieces = b"".join(hashlib.sha1(space[at : at + PIECE]).digest()
                      for at in range(0, len(space), PIECE))
    info: Info = {b"file tree": tree, b"files": files, b"meta version": 2, b"name": b"top",
                  b"piece length": PIECE, b"pieces": pieces}
    return info, layers


CONTENTS = {"a": b"x" * 40_000, "b": b"", "c": b"y" * 5}


def torrent_bytes(info: Info, layers: dict[bytes, Value] | None = None, **top: Value) -> bytes:
    doc: dict[bytes, Value] = {b"info": info, **{k.encode(): v for k, v in top.items()}}
    if layers is not None:
        doc[b"piece layers"] = layers
    return encode(doc)


def test_hybrid_read_back() -> None:
    info, layers = hybrid(CONTENTS)
    t = parse_torrent(torrent_bytes(info, layers, announce=b"http://t/announce"))
    assert t.info == encode(info)
    assert t.v1_hash == hashlib.sha1(encode(info)).digest()
    assert t.v2_hash == hashlib.sha256(encode(info)).digest()
    assert t.handshake_hash == t.v1_hash
    assert [(f.path, f.length, f.offset, f.pad) for f in t.files] == [
        (("top", "a"), 40_000, 0, False), (("top", ".pad", "9152"), 9152, 40_000, True),
        (("top", "b"), 0, 49_152, False), (("top", "c"), 5, 49_152, False),
        (("top", ".pad", "16379"), 16_379, 49_157, True)]
    assert t.num_pieces == 4 and t.total_length == 40_005 and t.multi_file
    assert t.trackers == (("http://t/announce",),)
    assert t.files[0].pieces_root in t.piece_layers


def test_v2_only_offsets_are_piece_aligned() -> None:
    info, layers = hybrid(CONTENTS)
    for key in (b"files", b"pieces"):
        del info[key]
    t = parse_torrent(torrent_bytes(info, layers))
    assert t.v1_hash is None and t.handshake_hash == (t.v2_hash or b"")[:20]
    assert [(f.path[-1], f.offset) for f in t.files] == [("a", 0), ("b", 49_152), ("c", 49_152)]
    assert t.num_pieces == 4


def test_single_file_v1() -> None:
    info: Info = {b"length": 5, b"name": b"f.txt", b"piece length": PIECE,
                  b"pieces": hashlib.sha1(b"hello").digest()}
    t = parse_info(encode(info), v1_hash=hashlib.sha1(encode(info)).digest())
    assert [(f.path, f.length) for f in t.files] == [(("f.txt",), 5)] and not t.multi_file
    with pytest.raises(RemoteProtocolError):
        parse_info(encode(info), v1_hash=bytes(20))


def test_parse_info_checks_truncated_v2_hash() -> None:
    info, _ = hybrid(CONTENTS)
    raw = encode(info)
    assert parse_info(raw, v2_hash=hashlib.sha256(raw).digest()[:20]).v2_hash is not None
    with pytest.raises(RemoteProtocolError):
        parse_info(raw, v2_hash=bytes(20))


def test_metadata_is_hashed_before_it_is_decoded() -> None:
    """Attack: a peer answers BEP 9 metadata requests with 4 MiB of ``le`` (two million
    empty lists: seconds of decoding and over 100 MiB in the event loop) that matches no
    info-hash; it was decoded before its hash was compared. Now a mismatch is refused
    before any decoding (a BencodeError would mean the bytes were read)."""
    flood = b"d4:infol" + b"le" * (limits.MAX_BENCODE_SIZE // 2 - 8) + b"ee"
    for hashes in ({"v1_hash": bytes(20)}, {"v2_hash": bytes(20)}, {"v2_hash": bytes(32)}):
        with pytest.raises(RemoteProtocolError, match="info-hash") as raised:
            parse_info(flood, **hashes)
        assert not isinstance(raised.value, BencodeError)


def _mutate(change: Callable[[Info, dict[bytes, Value]], None]) -> bytes:
    info, layers = hybrid(CONTENTS)
    change(info, layers)
    return torrent_bytes(info, layers)


def _set(key: bytes, value: Value) -> Callable[[Info, dict[bytes, Value]], None]:
    return lambda info, _: info.__setitem__(key, value)


def _tree(value: Value) -> Callable[[Info, dict[bytes, Value]], None]:
    def change(info: Info, _: dict[bytes, Value]) -> None:
        tree = info[b"file tree"]
        assert isinstance(tree, dict)
        tree[b"a"] = value
    return change


def _v1_path(path: list[Value]) -> Callable[[Info, dict[bytes, Value]], None]:
    def change(info: Info, _: dict[bytes, Value]) -> None:
        del info[b"file tree"], info[b"meta version"]
        files = info[b"files"]
        assert isinstance(files, list) and isinstance(files[0], dict)
        files[0][b"path"] = path
    return change


def _drop_layers(info: Info, layers: dict[bytes, Value]) -> None:
    layers.clear()


def _bad_layer(info: Info, layers: dict[bytes, Value]) -> None:
    for root in layers:
        layers[root] = bytes(32 * 3)


def _short_layer(info: Info, layers: dict[bytes, Value]) -> None:
    for root, layer in layers.items():
        assert isinstance(layer, bytes)
        layers[root] = layer[:-32]


def _unpadded(info: Info, _: dict[bytes, Value]) -> None:
    files = info[b"files"]
    assert isinstance(files, list)
    del files[1]  # the pad after "a": "c" no longer starts on a piece boundary


def _v1_extra_file(info: Info, _: dict[bytes, Value]) -> None:
    files = info[b"files"]
    assert isinstance(files, list)
    files.append({b"length": 1, b"path": [b"extra"]})


def _big_pad(info: Info, _: dict[bytes, Value]) -> None:
    files, pieces = info[b"files"], info[b"pieces"]
    assert isinstance(files, list) and isinstance(files[1], dict) and isinstance(pieces, bytes)
    files[1][b"length"] = 9152 + PIECE  # aligned still, but one v1 piece more than v2 has
    info[b"pieces"] = pieces + bytes(20)


def _same_root_other_length(info: Info, _: dict[bytes, Value]) -> None:
    tree = info[b"file tree"]
    assert isinstance(tree, dict) and isinstance(tree[b"a"], dict)
    leaf = tree[b"a"][b""]
    assert isinstance(leaf, dict)
    tree[b"d"] = {b"": {**leaf, b"length": 40_001}}  # as many pieces as "a": one layer fits
    files, pieces = info[b"files"], info[b"pieces"]
    assert isinstance(files, list) and isinstance(pieces, bytes)
    files.append({b"length": 40_001, b"path": [b"d"]})
    info[b"pieces"] = pieces + bytes(60)


HOSTILE = {
    "hybrid pad of a piece or more": _big_pad,
    "one root, two lengths": _same_root_other_length,
    "piece length not a power of two": _set(b"piece length", 3 * PIECE),
    "piece length under 16 KiB": _set(b"piece length", 8 * 1024),
    "piece length huge": _set(b"piece length", 2**40),
    "unknown meta version": _set(b"meta version", 3),
    "name with a slash": _set(b"name", b"a/b"),
    "name ..": _set(b"name", b".."),
    "name empty": _set(b"name", b""),
    "name not utf-8": _set(b"name", b"\xff"),
    "one piece hash short": _set(b"pieces", bytes(60)),
    "pieces not a multiple of 20": _set(b"pieces", bytes(81)),
    "tree name ..": _tree({b"..": {b"": {b"length": 0}}}),
    "tree name with NUL": _tree({b"x\0": {b"": {b"length": 0}}}),
    "tree node file and folder": _tree({b"": {b"length": 0}, b"x": {b"": {b"length": 0}}}),
    "tree leaf without root": _tree({b"": {b"length": 40_000}}),
    "tree negative length": _tree({b"": {b"length": -1}}),
    "v1 path ..": _v1_path([b".."]),
    "v1 path absolute": _v1_path([b"", b"etc"]),
    "v1 path with backslash": _v1_path([b"..\\x"]),
    "v1 path dot": _v1_path([b"."]),
    "v1 path empty list": _v1_path([]),
    "v1 path twice": _v1_path([b"c"]),
    "v1 file and folder": _v1_path([b"c", b"x"]),
    "missing piece layer": _drop_layers,
    "wrong piece layer": _bad_layer,
    "short piece layer": _short_layer,
    "hybrid without pad": _unpadded,
    "hybrid v1 file not in v2": _v1_extra_file,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_torrents_refused(name: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_torrent(_mutate(HOSTILE[name]))


def test_unchanged_fixture_is_accepted() -> None:
    """The hostile cases above differ from a valid torrent by their one change only."""
    assert parse_torrent(_mutate(lambda info, layers: None)).num_pieces == 4


def test_every_prefix_and_trailing_bytes_refused() -> None:
    """A .torrent is one bencoded value: cut anywhere, or followed by anything, it is not."""
    whole = torrent_bytes(*hybrid(CONTENTS))
    assert parse_torrent(whole).num_pieces == 4
    for end in range(len(whole)):
        with pytest.raises(BencodeError):
            parse_torrent(whole[:end])
    with pytest.raises(BencodeError):
        parse_torrent(whole + b"\n")


def test_not_bencode_or_no_info() -> None:
    with pytest.raises(BencodeError):
        parse_torrent(b"d4:infod")
    with pytest.raises(RemoteProtocolError):
        parse_torrent(encode({b"announce": b"x"}))
    with pytest.raises(RemoteProtocolError):
        parse_torrent(encode([b"not a dict"]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_torrent_or_remote_error(data: bytes) -> None:
    try:
        parse_torrent(data)
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_torrents_give_torrent_or_remote_error(data: st.DataObject) -> None:
    raw = bytearray(torrent_bytes(*hybrid(CONTENTS)))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        parse_torrent(bytes(raw))
    except RemoteProtocolError:
        pass


_good = st.sampled_from([b"a", b"b", b"c", b".pad", "\u00e9".encode()])
_names = st.one_of(_good, _good, _good, _good, _good, _good, st.sampled_from(
    [b".", b"..", b"", b"x/y", b"c\\d", b"n\0", b"\xff"]))
_leaf = st.fixed_dictionaries({b"length": st.integers(-1, 3 * PIECE)},
                              optional={b"pieces root": st.binary(min_size=32, max_size=32)
                                        | st.binary(max_size=31),
                                        b"attr": st.sampled_from([b"p", b"x", b""])})
_trees: st.SearchStrategy[Value] = st.recursive(
    st.builds(lambda leaf: {b"": leaf}, _leaf),
    lambda inner: st.dictionaries(_names, inner, min_size=1, max_size=3), max_leaves=6)
_v1_file: st.SearchStrategy[Value] = st.fixed_dictionaries(
    {b"length": st.integers(-1, 3 * PIECE), b"path": st.lists(_names, max_size=3)},
    optional={b"attr": st.sampled_from([b"p", b"x"])})
@st.composite
def _info(draw: st.DrawFn) -> Info:
    """A v1, v2 or hybrid info dictionary with parts that are often wrong."""
    info: Info = {b"name": draw(_names),
                  b"piece length": draw(st.sampled_from([PIECE] * 6 + [3 * PIECE, 0]))}
    kind = draw(st.sampled_from(["v1", "v2", "hybrid"]))
    if kind != "v1":
        info[b"meta version"] = draw(st.sampled_from([2] * 5 + [3]))
        info[b"file tree"] = draw(st.dictionaries(_names, _trees, max_size=3))
    if kind != "v2":
        if draw(st.booleans()):
            info[b"files"] = draw(st.lists(_v1_file, max_size=4))
        else:
            info[b"length"] = draw(st.integers(-1, 3 * PIECE))
        info[b"pieces"] = b""
    return info


def _v1_end(info: Info) -> int:
    files = info.get(b"files", [{b"length": info.get(b"length", 0)}])
    assert isinstance(files, list)
    return sum(f[b"length"] for f in files if isinstance(f, dict)  # type: ignore[misc]
               and isinstance(f.get(b"length"), int))


@settings(max_examples=400, deadline=None)
@given(_info(), st.booleans())
def test_accepted_info_has_only_safe_paths(info: Info, count_pieces: bool) -> None:
    """Near-valid info dictionaries: refused, or every path safe and every count right."""
    if count_pieces and b"pieces" in info and isinstance(info[b"piece length"], int) \
            and info[b"piece length"] > 0:
        info[b"pieces"] = bytes(20 * -(-_v1_end(info) // info[b"piece length"]))
    try:
        t = parse_info(encode(info))
    except RemoteProtocolError:
        event("refused")
        return
    event("accepted")
    for f in t.files:
        assert all(p not in ("", ".", "..") and not set(p) & set("/\\\0") for p in f.path)
    if t.v1_hash is not None:
        end = t.files[-1].offset + t.files[-1].length
        assert len(t.pieces) // 20 == -(-end // t.piece_length)
