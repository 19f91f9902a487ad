"""BEP 52 merkle trees: roots and piece layers as libtorrent computes them; hash proofs."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.protocol import merkle

BLOCK = merkle.BLOCK


def naive_root(leaves: list[bytes]) -> bytes:
    """The textbook tree: leaves padded with zero hashes to a power of two, hashed up."""
    row = leaves + [bytes(32)] * (merkle.width(len(leaves)) - len(leaves))
    while len(row) > 1:
        row = [hashlib.sha256(row[i] + row[i + 1]).digest() for i in range(0, len(row), 2)]
    return row[0]


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, 4 * BLOCK, 4 * BLOCK + 1,
                                  37 * BLOCK + 5])
@pytest.mark.parametrize("piece_length", [BLOCK, 4 * BLOCK, 16 * BLOCK])
def test_root_is_the_whole_file_tree(size: int, piece_length: int) -> None:
    leaves = merkle.block_hashes(os.urandom(size))
    root = merkle.file_root(leaves, piece_length)
    assert root == (naive_root(leaves) if leaves else None)
    if size > piece_length:
        layer = merkle.piece_layer(leaves, piece_length)
        assert len(layer) == -(-size // piece_length)
        assert merkle.layer_root(layer, piece_length) == root


@pytest.mark.parametrize("size", [1, BLOCK - 1, 4 * BLOCK, 4 * BLOCK + 7, 50 * BLOCK + 3])
def test_roots_and_layers_match_libtorrent(tmp_path: Path, size: int) -> None:
    """Files smaller than a block, exactly one piece, not a multiple, many pieces."""
    lt: Any = pytest.importorskip("libtorrent", reason="the libtorrent wheel (test extra)")
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    piece_length = 4 * BLOCK
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        creator = lt.create_torrent(lt.list_files(str(tmp_path / "f")), piece_length,
                                    flags=lt.create_torrent.v2_only)
        lt.set_piece_hashes(creator, str(tmp_path))
    made = creator.generate()
    leaves = merkle.block_hashes(data)
    root = made[b"info"][b"file tree"][b"f"][b""][b"pieces root"]
    assert merkle.file_root(leaves, piece_length) == root
    layer = made[b"piece layers"].get(root)
    if size > piece_length:
        assert layer == b"".join(merkle.piece_layer(leaves, piece_length))
    else:
        assert layer is None


def flipped(digest: bytes) -> bytes:
    return bytes([digest[0] ^ 1]) + digest[1:]


def test_pad_hash() -> None:
    assert merkle.pad_hash(0) == bytes(32)
    assert merkle.pad_hash(2) == naive_root([bytes(32)] * 4)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_proofs_verify_and_tampered_ones_do_not(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 70))
    leaves = [hashlib.sha256(bytes([n])).digest() for n in range(count)]
    rows = merkle.tree_rows(leaves)
    height = len(rows) - 1
    base = data.draw(st.integers(0, height))
    length = 1 << data.draw(st.integers(0, height - base))
    index = length * data.draw(st.integers(0, len(rows[base]) // length - 1))
    layers = height - base - 1  # BEP 52 counts proof layers from the base layer
    if layers < 0:  # the root's row: no proof layer below the root to ask for
        with pytest.raises(IndexError):
            merkle.proof_hashes(rows, base, index, length, layers)
        return
    answer = merkle.proof_hashes(rows, base, index, length, layers)
    assert len(answer) == length + merkle.uncle_count(length, layers)
    hashes, uncles = answer[:length], answer[length:]
    root = rows[-1][0]
    assert root == naive_root(leaves)
    assert merkle.verify_proof(root, height, base, index, hashes, uncles)
    if uncles:
        assert not merkle.verify_proof(root, height, base, index, hashes, uncles[:-1])
        wrong = [flipped(uncles[0])] + uncles[1:]
        assert not merkle.verify_proof(root, height, base, index, hashes, wrong)
    assert not merkle.verify_proof(root, height, base, index, [flipped(hashes[0]), *hashes[1:]],
                                   uncles)


def test_proof_requests_outside_the_tree() -> None:
    rows = merkle.tree_rows([bytes(32)] * 4)
    with pytest.raises(IndexError):
        merkle.proof_hashes(rows, 0, 3, 2, 1)
    with pytest.raises(IndexError):  # a proof past the root (libtorrent rejects it too)
        merkle.proof_hashes(rows, 0, 0, 2, 2)


def test_proof_layers_count_from_the_base_layer_as_libtorrent_does() -> None:
    """libtorrent asks the piece layer of a big file in chunks of 512 hashes, with proof
    layers counted from the base layer, the first ones covered by the chunk itself: with
    the node above the chunk known, it asks 9 layers and takes exactly one uncle."""
    rows = merkle.tree_rows([bytes([n % 256, n // 256]) * 16 for n in range(2048)])
    answer = merkle.proof_hashes(rows, 0, 512, 512, 9)
    assert answer[512:] == [rows[9][0]]
    assert len(merkle.proof_hashes(rows, 0, 512, 512, 10)) == 512 + 2
    assert len(merkle.proof_hashes(rows, 0, 512, 128, 9)) == 128 + 3
    assert len(merkle.proof_hashes(rows, 0, 512, 512, 8)) == 512  # all inside the chunk
    assert merkle.proof_hashes(rows, 0, 5, 1, 0)[1:] == [rows[0][4]]
    assert not merkle.verify_proof(rows[-1][0], 2, 0, 1, [bytes(32)] * 2, [])
    assert not merkle.verify_proof(rows[-1][0], 2, 0, 0, [bytes(32)] * 3, [])
