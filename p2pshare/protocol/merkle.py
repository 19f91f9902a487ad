"""BEP 52 merkle trees: 16 KiB block hashes, piece layers, file roots and hash proofs.

Strategy: a v2 torrent names each file by the root of a binary SHA-256 tree whose leaves
are the hashes of the file's 16 KiB blocks (the last one may be short), the leaves padded
with zero hashes up to a power of two. Pieces are the subtrees ``piece_length / 16 KiB``
leaves wide; the "piece layer" is the row of their roots, and a piece layer padded with
the root of an all-zero subtree of the same height gives the file's root again. So the
whole module is three operations on rows of hashes, pure functions over bytes:

- ``row_up`` (one row to the row above, padded),
- ``root_of`` (a row to its root, after padding it to a power of two),
- climbing from a subtree to the root with the "uncle" hashes of a BEP 52 ``hashes``
  message (``climb``, ``verify_proof``); ``proof_hashes`` is the answering side.

Where this differs from a textbook merkle tree: the padding leaf is 32 zero bytes (not the
hash of an empty block), and a file no bigger than one piece has a tree only as wide as
the power of two of its own blocks (its root is not the hash of a full-width piece
subtree), which is what BEP 52 says and what libtorrent writes (tests/bt compares both).

The module is pure (no I/O) and sits under ``protocol/`` because both the metainfo reader
(checking a torrent's piece layers) and the peer wire codec (checking ``hashes``) need it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

BLOCK = 16 * 1024  # bytes of a v2 leaf block (BEP 52)
HASH = 32  # bytes of a SHA-256
ZERO = bytes(HASH)  # the padding leaf


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def block_hashes(data: bytes | memoryview) -> list[bytes]:
    """The leaf hashes of ``data``: one per 16 KiB block, the last block possibly short."""
    view = memoryview(data)
    return [hashlib.sha256(view[at : at + BLOCK]).digest() for at in range(0, len(view), BLOCK)]


def width(count: int) -> int:
    """The smallest power of two at least ``count`` (1 for 0 or 1)."""
    return 1 << max(count - 1, 0).bit_length()


@lru_cache(maxsize=64)
def pad_hash(height: int) -> bytes:
    """The root of an all-zero subtree ``height`` levels above the leaves."""
    node = ZERO
    for _ in range(height):
        node = sha256(node + node)
    return node


def row_up(row: Sequence[bytes], pad: bytes) -> list[bytes]:
    """The row above ``row`` (an odd row is completed with ``pad``)."""
    full = list(row) + [pad] * (len(row) % 2)
    return [sha256(full[at] + full[at + 1]) for at in range(0, len(full), 2)]


def root_of(row: Sequence[bytes], height: int = 0, *, size: int | None = None) -> bytes:
    """The root of ``row`` (nodes ``height`` levels above the leaves) padded to ``size``
    nodes (default: the power of two of its length) with all-zero subtrees."""
    levels = (width(size if size is not None else len(row)) - 1).bit_length()
    node_row = list(row) or [pad_hash(height)]
    for level in range(height, height + levels):
        node_row = row_up(node_row, pad_hash(level))
    return node_row[0]


def piece_height(piece_length: int) -> int:
    """Levels from the leaves up to the piece layer (``piece_length`` a power of two)."""
    return (piece_length // BLOCK).bit_length() - 1


def piece_layer(leaves: Sequence[bytes], piece_length: int) -> list[bytes]:
    """The piece hashes of a file with these leaves: each piece's subtree at full width."""
    per = piece_length // BLOCK
    return [root_of(leaves[at : at + per], size=per) for at in range(0, len(leaves), per)]


def file_root(leaves: Sequence[bytes], piece_length: int) -> bytes | None:
    """A file's ``pieces root`` (None for an empty file: it has none)."""
    if not leaves:
        return None
    if len(leaves) <= piece_length // BLOCK:
        return root_of(leaves)
    return layer_root(piece_layer(leaves, piece_length), piece_length)


def layer_root(layer: Sequence[bytes], piece_length: int) -> bytes:
    """The root a (complete) piece layer stands for."""
    return root_of(layer, piece_height(piece_length))


def climb(node: bytes, index: int, uncles: Sequence[bytes]) -> tuple[bytes, int]:
    """Node ``index`` of its row, hashed up with one uncle per level: (top node, its index)."""
    for uncle in uncles:
        node = sha256(uncle + node) if index & 1 else sha256(node + uncle)
        index >>= 1
    return node, index


def verify_proof(root: bytes, tree_height: int, base: int, index: int,
                 hashes: Sequence[bytes], uncles: Sequence[bytes]) -> bool:
    """Whether a BEP 52 ``hashes`` answer proves ``hashes`` against ``root``.

    ``hashes`` are nodes ``index`` onwards of the row ``base`` levels above the leaves
    (their count a power of two, ``index`` a multiple of it), ``uncles`` the sibling
    hashes from just above that run up to just below the root, and ``tree_height`` the
    levels from the leaves to ``root`` (the power of two of the file's blocks).
    """
    count = len(hashes)
    if count == 0 or count & (count - 1) or index % count or index < 0:
        return False
    levels = count.bit_length() - 1
    if base + levels + len(uncles) != tree_height:
        return False
    top, at = climb(root_of(hashes, base), index >> levels, uncles)
    return at == 0 and top == root


def tree_rows(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every row of a file's tree, leaves first, each padded to its power-of-two width."""
    rows = [list(leaves) + [ZERO] * (width(len(leaves)) - len(leaves))]
    while len(rows[-1]) > 1:
        rows.append(row_up(rows[-1], ZERO))
    return rows


def uncle_count(length: int, proof_layers: int) -> int:
    """Uncle hashes in the answer to a hash request of ``length`` hashes (a power of two)
    with ``proof_layers``: BEP 52 counts proof layers from the base layer, and the layers
    the requested hashes hash up to by themselves carry no uncle, so one uncle for each
    layer from the one of their subtree's root up to ``proof_layers`` (libtorrent's count,
    both as it asks and as it answers)."""
    return max(0, proof_layers - (length.bit_length() - 1) + 1)


def proof_hashes(rows: Sequence[Sequence[bytes]], base: int, index: int, length: int,
                 proof_layers: int) -> list[bytes]:
    """The answer to a hash request: ``length`` nodes of row ``base`` from ``index``, then
    ``uncle_count(length, proof_layers)`` uncles of their subtree, lowest first.

    Raises:
        IndexError: a request outside the tree, or whose proof would pass the root (the
            caller answers it with a reject, as libtorrent does).
    """
    row = rows[base]
    if index < 0 or length <= 0 or index + length > len(row) or \
            not 0 <= proof_layers < len(rows) - 1 - base:
        raise IndexError("hash request outside the tree")
    answer = list(row[index : index + length])
    level = base + (length.bit_length() - 1)
    at = index // length
    for step in range(uncle_count(length, proof_layers)):
        answer.append(rows[level + step][at ^ 1])
        at >>= 1
    return answer
