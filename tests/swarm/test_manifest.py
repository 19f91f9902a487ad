"""Manifests (canonical bytes, id stability, checks), piece files and resume records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import IntegrityError, RemoteProtocolError
from p2pshare.swarm import resume
from p2pshare.swarm.manifest import Manifest, TreeFile, default_piece_size
from p2pshare.swarm.pieces import full
from p2pshare.swarm.storage import PieceFile, hash_file

DATA = bytes(range(256)) * 100  # 25,600 bytes: two pieces of 16 KiB
# Pinned: if this changes, every existing swarm id changes. Never edit it lightly.
DATA_ID = "a377dea111a0dffe8d5cccf47997b738439ac6d1d4478ceeec656d6026c88c91"


def manifest_of(data: bytes, name: str = "hello.bin", piece: int = 16384) -> Manifest:
    digests = tuple(hashlib.sha256(data[i:i + piece]).digest()
                    for i in range(0, len(data), piece))
    return Manifest(name, len(data), piece, digests)


def test_id_is_stable() -> None:
    m = manifest_of(DATA)
    assert m.id == DATA_ID
    assert m.id == hashlib.sha256(m.content_bytes()).hexdigest()
    assert m.to_bytes().startswith(b'{"format":2,"name":"hello.bin","piece_size":16384,')


def test_same_content_same_id_from_any_seeder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "hello.bin").write_bytes(DATA)
    one = hash_file(tmp_path / "a" / "hello.bin", 16384)
    two = hash_file(tmp_path / "b" / "hello.bin", 16384)
    assert one == two and one.id == DATA_ID


def test_round_trip_and_verification() -> None:
    m = manifest_of(DATA)
    assert Manifest.from_bytes(m.to_bytes(), m.id) == m
    with pytest.raises(IntegrityError):
        Manifest.from_bytes(m.to_bytes(), "0" * 64)
    tampered = m.to_bytes().replace(b'"size":25600', b'"size":25601')
    with pytest.raises(IntegrityError):
        Manifest.from_bytes(tampered, m.id)


@pytest.mark.parametrize("edit", [
    lambda o: json.dumps(o).encode(),  # white space: not canonical
    lambda o: json.dumps({**o, "extra": 1}, sort_keys=True, separators=(",", ":")).encode(),
    lambda o: json.dumps({**o, "size": 40000}, sort_keys=True, separators=(",", ":")).encode(),
    lambda o: json.dumps({**o, "name": "../x"}, sort_keys=True, separators=(",", ":")).encode(),
    lambda o: json.dumps({**o, "size": True}, sort_keys=True, separators=(",", ":")).encode(),
    lambda o: json.dumps({**o, "format": 1}, sort_keys=True, separators=(",", ":")).encode(),
    lambda o: b"[1, 2",
    lambda o: b"\xff",
])
def test_malformed_manifests(edit: object) -> None:
    obj = json.loads(manifest_of(DATA).to_bytes())
    data = edit(obj)  # type: ignore[operator]
    with pytest.raises(RemoteProtocolError):
        Manifest.from_bytes(data)


@given(st.binary(max_size=70_000), st.sampled_from([16384, 32768]),
       st.text(min_size=1, max_size=20).filter(lambda s: s.isprintable() and s.strip() == s
                                              and "/" not in s and "\\" not in s
                                              and s not in (".", "..")))
def test_any_manifest_round_trips(data: bytes, piece: int, name: str) -> None:
    m = manifest_of(data, name, piece)
    assert Manifest.from_bytes(m.to_bytes(), m.id) == m


@given(st.integers(1, 40 * 16384), st.sampled_from([16384, 32768]))
def test_a_single_file_has_the_piece_lengths_of_a_folder_of_that_one_file(
        size: int, piece: int) -> None:
    """``length``'s arithmetic for a single file gives what the layout search gives."""
    count = -(-size // piece)
    digests = (bytes(32),) * count
    alone = Manifest("a.bin", size, piece, digests)
    folder = Manifest("f", size, piece, digests, (TreeFile("a.bin", size),))
    assert [alone.length(i) for i in range(count)] == \
        [folder.length(i) for i in range(count)]
    assert sum(alone.length(i) for i in range(count)) == size


def test_default_piece_size_grows_with_the_file() -> None:
    assert default_piece_size(0) == limits.SWARM_PIECE_SIZE
    assert default_piece_size(128 * limits.MiB) == 256 * limits.KiB
    assert default_piece_size(4 * limits.GiB) == 1 * limits.MiB
    assert -(-4 * limits.GiB // default_piece_size(4 * limits.GiB)) <= limits.SWARM_TARGET_PIECES


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    m = hash_file(tmp_path / "empty")
    assert m.count == 0 and Manifest.from_bytes(m.to_bytes(), m.id) == m


def test_piece_file_serves_only_verified_pieces(tmp_path: Path) -> None:
    m = manifest_of(DATA)
    pf = PieceFile.create_partial(tmp_path / "part", m)
    try:
        assert (tmp_path / "part").stat().st_size == len(DATA)
        assert pf.locate(0) is None
        pf.write(1, DATA[16384:])
        assert pf.locate(1) == (pf.handle, 16384, len(DATA) - 16384)
        assert pf.locate(2) is None and pf.locate(-1) is None
        assert pf.check(1) and not pf.check(0)
    finally:
        pf.close()


def test_resume_trusts_only_pieces_that_still_verify(tmp_path: Path) -> None:
    m = manifest_of(DATA)
    part, record = resume.paths(tmp_path, m)
    pf = PieceFile.create_partial(part, m)
    pf.write(0, DATA[:16384])
    pf.write(1, DATA[16384:])
    resume.save(record, m, pf.have)
    pf.close()
    with open(part, "r+b") as handle:  # a byte changes behind our back
        handle.seek(20000)
        handle.write(b"X")
    again = PieceFile.create_partial(part, m)
    try:
        assert resume.load(record, m) == full(2)
        assert resume.recover(again, resume.load(record, m)) == 1  # piece 0 only
        assert again.have == 1
    finally:
        again.close()


def test_resume_ignores_a_record_of_another_file(tmp_path: Path) -> None:
    m = manifest_of(DATA)
    record = tmp_path / "r.json"
    record.write_text(json.dumps({"format": 1, "id": "0" * 64, "verified": "0-1"}))
    assert resume.load(record, m) == 0
    record.write_text("{not json")
    assert resume.load(record, m) == 0
    record.write_text("[" * 100_000 + "]" * 100_000)  # nested deeper than the parser goes
    assert resume.load(record, m) == 0
    assert resume.load(tmp_path / "missing.json", m) == 0
