"""bt/hashing: the v1 pieces and v2 trees of files read in chunks, against one-shot hashing.

The chunk size is made small here so that pieces are cut by chunk boundaries as well as
by file boundaries, and several jobs are in flight at once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pshare.bt import hashing
from p2pshare.protocol import merkle

BLOCK = merkle.BLOCK


@dataclass(frozen=True)
class File:
    path: tuple[str, ...]
    disk: Path
    size: int
    pad: bool = False


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 5 * BLOCK + 3), min_size=1, max_size=5),
       st.sampled_from([BLOCK, 2 * BLOCK, 8 * BLOCK]), st.sampled_from([BLOCK, 4 * BLOCK]))
def test_chunked_equals_one_shot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 sizes: list[int], piece_length: int, chunk: int) -> None:
    monkeypatch.setattr(hashing, "CHUNK", chunk)
    files, space = [], b""
    for number, size in enumerate(sizes):
        data = os.urandom(size)
        (tmp_path / str(number)).write_bytes(data)
        files.append(File((str(number),), tmp_path / str(number), size))
        space += data
    files.append(File(("pad",), Path(), 7, pad=True))
    space += bytes(7)
    got = hashing.hash_files(files, piece_length, v1=True, v2=True)
    assert bytes(got.pieces) == b"".join(hashlib.sha1(space[at : at + piece_length]).digest()
                                         for at in range(0, len(space), piece_length))
    for f in files[:-1]:
        leaves = merkle.block_hashes(f.disk.read_bytes())
        assert got.roots[f.path] == merkle.file_root(leaves, piece_length)
        if f.size > piece_length:
            assert got.layers[got.roots[f.path] or b""] == b"".join(
                merkle.piece_layer(leaves, piece_length))
    assert ("pad",) not in got.roots


def test_a_file_that_changes_size_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 10)
    with pytest.raises(OSError, match="changed size"):
        hashing.hash_files([File(("f",), tmp_path / "f", 20)], BLOCK, v1=True, v2=False)
    with pytest.raises(OSError, match="changed size"):
        hashing.hash_files([File(("f",), tmp_path / "f", 5)], BLOCK, v1=False, v2=True)
