"""Whole swarms of real ``p2pshare`` processes on loopback (server, share, fetch)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .procs import fetch, files, killed_fetch, seeder, server, verified_pieces, wait_seeders

MiB = 1024 * 1024


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "seed" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(6 * MiB + 12345))  # binary, and the last piece is short
    return path


def test_one_seed_three_leeches_byte_identical(data: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with server(logs) as address, seeder(data, address, logs, "--piece-size", "64K") as swarm:
        leeches = [fetch(swarm, address, tmp_path / f"leech{i}", logs) for i in range(3)]
        for leech in leeches:
            leech.finish()
        for i in range(3):
            assert (tmp_path / f"leech{i}" / "data.bin").read_bytes() == data.read_bytes()
            assert not list((tmp_path / f"leech{i}").glob(".*"))  # no temporary files left
        [entry] = files(address)
        assert (entry["name"], entry["size"], entry["id"]) == ("data.bin", data.stat().st_size,
                                                               swarm)


def test_late_leech_completes_from_leeches_after_the_seed_left(data: Path,
                                                               tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with server(logs) as address:
        with seeder(data, address, logs) as swarm:
            first = fetch("data.bin", address, tmp_path / "a", logs, "--seed")  # by name
            first.wait_line("data.bin$")  # the path of the complete file
            wait_seeders(address, 2)
        wait_seeders(address, 1, "the original seed's records to vanish")
        fetch(swarm[:10], address, tmp_path / "b", logs).finish()  # by id prefix
        first.stop()
    assert (tmp_path / "b" / "data.bin").read_bytes() == data.read_bytes()


def test_leech_killed_mid_download_resumes(data: Path, tmp_path: Path) -> None:
    logs, out = tmp_path / "logs", tmp_path / "leech"
    with server(logs) as address:
        with killed_fetch(data, address, out, logs) as swarm:
            assert not (out / "data.bin").exists()
            assert 8 <= verified_pieces(out) < 98
            # A second, unthrottled seeder of the same file joins the same swarm.
            with seeder(data, address, logs, "--piece-size", "64K") as again:
                assert again == swarm
                output = fetch(swarm, address, out, logs).finish()
    assert "resuming data.bin" in output
    assert (out / "data.bin").read_bytes() == data.read_bytes()
    assert not list(out.glob(".*"))


def test_ambiguous_and_unknown_names(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    one, two = tmp_path / "1" / "same.txt", tmp_path / "2" / "same.txt"
    for path, text in ((one, b"one"), (two, b"two")):
        path.parent.mkdir()
        path.write_bytes(text)
    with server(logs) as address, seeder(one, address, logs) as id1, \
            seeder(two, address, logs) as id2:
        ambiguous = fetch("same.txt", address, tmp_path / "out", logs)
        ambiguous.popen.wait(timeout=30)
        assert ambiguous.popen.returncode == 2
        assert id1[:12] in ambiguous.output and id2[:12] in ambiguous.output
        assert "give an id" in ambiguous.output
        unknown = fetch("nothing.txt", address, tmp_path / "out", logs)
        unknown.popen.wait(timeout=30)
        assert unknown.popen.returncode == 3 and "no swarm" in unknown.output  # NOT_FOUND
