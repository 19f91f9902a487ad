"""Disk trouble: the download folder fills up (a small tmpfs mounted for the test).

A download that runs out of space must fail with a clear one-line reason and a non-zero
exit, leave no partial or corrupt file under a final name, leave no temporary file behind
for P2P-CI, and keep its verified swarm pieces so that a later fetch resumes. A P2P-CI
file larger than the folder's free space is refused before a byte is written (each holder
says so); a folder that refuses to be written (read-only) is our error, so no second holder
is asked. Mounting needs root; elsewhere the tests are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pshare.samples import sample_text, write_sample_rfcs

from ..aio import HOST
from ..helpers import run_cli
from ..swarm.procs import Proc, fetch, running, seeder, server, verified_pieces

KiB, MiB = 1024, 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs at ``tmp_path/disk`` (resize it with ``resize``), always unmounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def resize(disk: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


def one_line_failure(done: subprocess.CompletedProcess[str], reason: str) -> str:
    """The command failed, and its last stderr line is ``p2pshare: ...`` naming ``reason``."""
    assert done.returncode != 0, done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("p2pshare: ") and reason in last, done.stderr
    return last


def test_ci_get_into_a_full_folder(small_disk: Path, tmp_path: Path) -> None:
    """Two holders: a file that cannot fit is refused from each before anything is written;
    a read-only folder is our trouble, not the holder's, so the second is not asked."""
    logs = tmp_path / "logs"
    for name in ("a", "b"):
        write_sample_rfcs(tmp_path / name, {2345: 3 * MiB})
    with server(logs) as address:
        holder = ["peer", "--server", address, "--hostname", HOST, "--no-menu", "--dir"]
        with running([*holder, str(tmp_path / "a")], logs) as a, \
                running([*holder, str(tmp_path / "b")], logs) as b:
            ci_get_into_a_full_folder(address, small_disk, (a, b))


def ci_get_into_a_full_folder(address: str, small_disk: Path, holders: tuple[Proc, ...]
                              ) -> None:
    for peer in holders:
        peer.wait_line("upload server on port")
    get = ["get", "2345", "--server", address, "--dir", str(small_disk), "--json"]
    done = run_cli(get)
    line = one_line_failure(done, "no holder could send it")
    assert line.count("TooLarge: announces 3145728 bytes") == 2 and "room in our folder" in line
    print(f"\n[measure] CI get into a 1 MiB folder: exit {done.returncode}: {line}")
    assert sorted(os.listdir(small_disk)) == []  # no partial file, no temporary file
    resize(small_disk, "8m,ro")
    done = run_cli(get)
    line = one_line_failure(done, "cannot save it in ")
    assert "Read-only file system" in line
    assert len(json.loads(done.stdout)["attempts"]) == 1
    resize(small_disk, "8m,rw")  # space again, and writable: the same command now works
    assert run_cli(["get", "2345", "--server", address, "--dir", str(small_disk)]
                   ).returncode == 0
    assert (small_disk / "rfc2345.txt").read_bytes() == sample_text(2345, 3 * MiB)


def test_swarm_fetch_into_a_full_folder_then_resume(small_disk: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    data = tmp_path / "seed" / "data.bin"
    data.parent.mkdir()
    data.write_bytes(os.urandom(3 * MiB + 4321))
    with server(logs) as address, seeder(data, address, logs, "--piece-size", "64K",
                                         "--max-upload-rate", "2M") as swarm:
        first = fetch(swarm, address, small_disk, logs)
        first.popen.wait(timeout=60)
        tail = first.output.strip().splitlines()[-1]
        assert first.popen.returncode == 7 and tail.startswith("p2pshare: cannot write ") \
            and "No space left on device" in tail, first.output
        kept = verified_pieces(small_disk)
        print(f"\n[measure] swarm fetch of 3 MiB into a 1 MiB folder: exit "
              f"{first.popen.returncode}: {tail}; {kept} verified pieces kept")
        assert not (small_disk / "data.bin").exists()
        assert kept > 0
        resize(small_disk, "8m")
        again = fetch(swarm, address, small_disk, logs)
        output = again.finish()
    assert f"resuming data.bin: {kept} of" in output
    assert (small_disk / "data.bin").read_bytes() == data.read_bytes()
    assert sorted(os.listdir(small_disk)) == ["data.bin"]


def test_resume_record_is_rewritten_in_place_when_the_disk_is_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root: a disk that refuses new bytes (the write aside fails) still gets the
    new record, written over the old one, and no temporary file is left."""
    from p2pshare.swarm import resume

    from .targets import MANIFEST

    record = tmp_path / "r.resume.json"
    resume.save(record, MANIFEST, 0b1)

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)  # the write aside (files.write_whole) fails
    resume.save(record, MANIFEST, 0b10111)
    monkeypatch.undo()
    assert resume.load(record, MANIFEST) == 0b10111
    assert os.listdir(tmp_path) == ["r.resume.json"]
