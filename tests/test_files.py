"""The one atomic-download helper: whole file under its final name, or nothing."""

from __future__ import annotations

import ctypes
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare import files, limits
from p2pshare.swarm.manifest import check_name

from .helpers import wait_for


def names(*suffixes: str) -> Callable[[], str]:
    """A suffix source that yields ``suffixes`` in turn (to aim at a planted name)."""
    it: Iterator[str] = iter(suffixes)
    return lambda: next(it)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_commit_gives_the_final_name_with_the_bytes_and_mode(tmp_path: Path) -> None:
    with files.AtomicFile(tmp_path, "rfc1.txt") as out:
        assert out.path.parent == tmp_path and out.path.name.startswith(".rfc1.txt.")
        os.write(out.fd, b"hello\n")
        assert not (tmp_path / "rfc1.txt").exists()  # nothing under the name until commit
        assert out.commit() == tmp_path / "rfc1.txt"
    assert (tmp_path / "rfc1.txt").read_bytes() == b"hello\n"
    # 0o666 as asked of os.open, less the umask, as any downloader creates a file.
    mode = stat.S_IMODE((tmp_path / "rfc1.txt").stat().st_mode)
    assert mode == files.FILE_MODE & ~current_umask()
    assert os.listdir(tmp_path) == ["rfc1.txt"]


def test_commit_replaces_an_older_file(tmp_path: Path) -> None:
    (tmp_path / "rfc1.txt").write_bytes(b"old")
    with files.AtomicFile(tmp_path, "rfc1.txt") as out:
        os.write(out.fd, b"new")
        out.commit()
    assert (tmp_path / "rfc1.txt").read_bytes() == b"new"


def test_leaving_without_commit_leaves_nothing(tmp_path: Path) -> None:
    with files.AtomicFile(tmp_path, "rfc1.txt") as out:
        os.write(out.fd, b"half a fi")
    assert os.listdir(tmp_path) == []
    assert out.fd == -1  # closed


def test_a_failure_inside_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "rfc1.txt").write_bytes(b"kept")
    with pytest.raises(ConnectionError), files.AtomicFile(tmp_path, "rfc1.txt") as out:
        os.write(out.fd, b"partial")
        raise ConnectionError("peer went away")
    assert os.listdir(tmp_path) == ["rfc1.txt"]
    assert (tmp_path / "rfc1.txt").read_bytes() == b"kept"


def test_a_failed_rename_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "rfc1.txt").mkdir()  # a folder in the way: os.replace refuses
    with pytest.raises(OSError), files.AtomicFile(tmp_path, "rfc1.txt") as out:
        out.commit()
    assert os.listdir(tmp_path) == ["rfc1.txt"]
    assert (tmp_path / "rfc1.txt").is_dir()


def test_a_planted_symlink_at_the_temporary_name_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    planted = tmp_path / files.temp_name("rfc1.txt", "aaaa")
    planted.symlink_to(target)
    with files.AtomicFile(tmp_path, "rfc1.txt", names("aaaa", "bbbb")) as out:
        assert out.path.name == files.temp_name("rfc1.txt", "bbbb")
        os.write(out.fd, b"data")
        out.commit()
    assert not target.exists()  # nothing was created or written through the link
    assert planted.is_symlink()
    assert (tmp_path / "rfc1.txt").read_bytes() == b"data"


def test_an_existing_temporary_name_is_not_reused(tmp_path: Path) -> None:
    planted = tmp_path / files.temp_name("rfc1.txt", "aaaa")
    planted.write_bytes(b"someone else's")
    with files.AtomicFile(tmp_path, "rfc1.txt", names("aaaa", "bbbb")) as out:
        assert out.path != planted
    assert planted.read_bytes() == b"someone else's"  # neither truncated nor removed
    assert os.listdir(tmp_path) == [planted.name]


def test_no_free_name_is_an_error(tmp_path: Path) -> None:
    (tmp_path / files.temp_name("rfc1.txt", "aaaa")).write_bytes(b"")
    with pytest.raises(FileExistsError):
        files.AtomicFile(tmp_path, "rfc1.txt", lambda: "aaaa")


def test_random_temporary_names_differ_and_are_hidden(tmp_path: Path) -> None:
    with files.AtomicFile(tmp_path, "rfc1.txt") as a, files.AtomicFile(tmp_path, "rfc1.txt") as b:
        assert a.path != b.path
        assert a.path.name.startswith(".") and a.path.name.endswith(".part")


def test_a_partial_file_is_reused_but_never_through_a_symlink(tmp_path: Path) -> None:
    part = tmp_path / ".data.part"
    part.write_bytes(b"resumed")
    fd = files.open_partial(part)
    try:
        assert os.pread(fd, 7, 0) == b"resumed"  # reused: not O_EXCL, not truncated
    finally:
        os.close(fd)
    link = tmp_path / ".link.part"
    link.symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        files.open_partial(link)
    assert not (tmp_path / "target").exists()


def test_publish_renames_a_long_lived_partial_file(tmp_path: Path) -> None:
    part = tmp_path / ".data.part"
    fd = files.open_partial(part)
    try:
        os.pwrite(fd, b"whole", 0)
        files.publish(fd, part, tmp_path / "data.bin")
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["data.bin"]
    assert (tmp_path / "data.bin").read_bytes() == b"whole"


# ------------------------------------------------------------------ names chosen by a sender
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)),
                    *(f"LPT{n}" for n in range(1, 10))}


def is_safe(name: str) -> bool:
    """Every rule of ``files.safe_name``, checked independently of it."""
    return (bool(name) and not name.startswith(".") and name not in (".", "..")
            and not any(c in '/\\<>:"|?*' or (not c.isprintable() and c != " ") for c in name)
            and name == name.strip() and not name.endswith(".")
            and name.split(".")[0].rstrip().upper() not in WINDOWS_RESERVED
            and len(name.encode("utf-8")) + limits.TEMP_NAME_ROOM <= limits.MAX_NAME_BYTES)


@pytest.mark.parametrize(("name", "expected"), [
    (".bash_profile", "_.bash_profile"), ("..", "_"), (".", "_"), ("", "_"),
    ("a/b\\c", "a_b_c"), ("CON", "_CON"), ("nul.txt", "_nul.txt"), ("com1", "_com1"),
    ("CONSOLE", "CONSOLE"), (" x.txt ", "x.txt"), ("x.", "x"), ("a\x1bb\r", "a_b_"),
    ("rfc1.txt", "rfc1.txt"), ("é.txt", "é.txt"),
])
def test_safe_name_examples(name: str, expected: str) -> None:
    assert files.safe_name(name) == expected


def test_a_long_name_keeps_its_extension_and_gains_a_hash() -> None:
    name = "n" * 240 + ".txt"
    short = files.safe_name(name)
    assert short.endswith(".txt") and short.startswith("nnnn") and "~" in short
    assert len(short.encode()) == limits.MAX_NAME_BYTES - limits.TEMP_NAME_ROOM
    assert files.safe_name("n" * 241 + ".txt") != short  # the hash tells them apart


@given(st.text(max_size=400))
def test_safe_name_is_safe_deterministic_and_idempotent(name: str) -> None:
    safe = files.safe_name(name)
    assert is_safe(safe), safe
    assert check_name(safe) == safe  # a manifest can carry it
    assert files.safe_name(name) == safe
    assert files.safe_name(safe) == safe
    for decorated in (f".{safe}.{'0' * 16}.resume.json", files.temp_name(safe, "0" * 16)):
        assert len(decorated.encode()) <= limits.MAX_NAME_BYTES


@given(st.text(max_size=400))
def test_a_temporary_name_always_fits(name: str) -> None:
    assert len(files.temp_name(name, "0" * 16).encode("utf-8", "surrogatepass")) \
        <= limits.MAX_NAME_BYTES


def test_open_partial_refuses_a_symlink_and_a_fifo(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(target)
    os.mkfifo(tmp_path / "fifo")
    for name in ("link", "fifo"):
        with pytest.raises(OSError):
            files.open_partial(tmp_path / name)
    assert target.read_bytes() == b"keep"


def test_write_whole_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (tmp_path / "record").symlink_to(target)
    files.write_whole(tmp_path / "record", b"new")
    assert target.read_bytes() == b"keep"
    assert (tmp_path / "record").read_bytes() == b"new"
    assert not (tmp_path / "record").is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["record", "target"]


@given(st.binary(max_size=3 * files.WRITE_SLICE + 7), st.integers(0, 2 * files.WRITE_SLICE))
def test_write_at_writes_everything_in_slices(data: bytes, offset: int) -> None:
    calls: list[int] = []
    real = os.pwrite

    def pwrite(fd: int, view: bytes, at: int) -> int:
        calls.append(len(view))
        return real(fd, view, at)

    fd = os.memfd_create("write_at")
    try:
        os.pwrite(fd, b"\xff" * (offset + len(data) + 5), 0)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "pwrite", pwrite)
            files.write_at(fd, bytearray(data), offset)
        after = os.pread(fd, offset + len(data) + 5, 0)
    finally:
        os.close(fd)
    assert after == b"\xff" * offset + data + b"\xff" * 5
    assert all(0 < size <= files.WRITE_SLICE for size in calls)
    assert len(calls) == -(-len(data) // files.WRITE_SLICE)


def test_write_at_goes_on_after_a_short_write() -> None:
    data = bytes(range(256)) * 300
    fd = os.memfd_create("short")
    real = os.pwrite
    try:
        with pytest.MonkeyPatch.context() as patch:  # the kernel may write less than asked
            patch.setattr(os, "pwrite", lambda fd, view, at: real(fd, view[:1000], at))
            files.write_at(fd, data, 3)
        assert os.pread(fd, len(data) + 3, 0) == bytes(3) + data
    finally:
        os.close(fd)


def test_writeback_starts_once_every_writeback_every_bytes_per_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    monkeypatch.setattr(files, "start_writeback", started.append)
    monkeypatch.setattr(files, "WRITEBACK_EVERY", 100)
    writeback = files.Writeback()
    one, other = (os.open(tmp_path / name, os.O_RDWR | os.O_CREAT) for name in "ab")
    try:
        for at in range(0, 300, 60):  # 5 writes of 60 bytes to one file
            files.write_at(one, b"x" * 60, at, writeback)
        files.write_at(other, b"y" * 99, 0, writeback)
        files.write_at(other, b"", 99, writeback)
        assert started == [one, one]  # at 120 and 240 bytes; the other not yet at 100
        files.write_at(other, b"y", 99, writeback)
        assert started == [one, one, other]
        files.write_at(one, b"z" * 500, 0)  # no writeback given: none started
        assert started == [one, one, other]
        assert os.pread(other, 200, 0) == b"y" * 100
    finally:
        os.close(one)
        os.close(other)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_start_writeback_returns_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    assert files._sync_file_range() is not None
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"abc")
        files.start_writeback(fd)  # returns at once, whatever the file system
        assert os.pread(fd, 3, 0) == b"abc"
    finally:
        os.close(fd)
    files.start_writeback(fd)  # closed now: the error is ignored (EBADF)


class _Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")]


def unwritten_pages(fd: int) -> int:
    """Pages of ``fd`` in the page cache not yet on disk (dirty or being written), by
    Linux's ``cachestat`` (6.5 on); skips the test where there is none."""
    libc = ctypes.CDLL(None, use_errno=True)
    stat = _Cachestat()
    if libc.syscall(451, fd, ctypes.byref(_Range(0, 0)), ctypes.byref(stat), 0) != 0:
        pytest.skip(f"no cachestat here ({os.strerror(ctypes.get_errno())})")
    return int(stat.nr_dirty + stat.nr_writeback)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's write-back")
def test_the_kernel_writes_back_once_asked_long_before_it_would_alone(tmp_path: Path) -> None:
    """64 MiB written stay dirty for the kernel's 30 s (``vm.dirty_expire_centisecs``,
    well under its background threshold) unless something asks; ``start_writeback``
    does, and this file's pages are on disk within the deadline (counted for this file
    alone, whatever else the machine writes)."""
    size = 64 * 1024 * 1024
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        files.write_at(fd, os.urandom(size), 0)
        if unwritten_pages(fd) < size // 2 // os.sysconf("SC_PAGE_SIZE"):
            pytest.skip("this file system keeps no dirty pages (tmpfs?)")
        files.start_writeback(fd)
        wait_for(lambda: unwritten_pages(fd) == 0, 10, "write-back")
    finally:
        os.close(fd)


@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs fincore (util-linux)")
def test_written_pieces_stay_in_the_page_cache_for_serving(tmp_path: Path) -> None:
    """Starting write-back must not drop what was just written, which a piece server
    reads again at once (fincore reports the bytes of a file in memory; on tmpfs nothing
    is ever written back, and the test proves nothing there)."""
    size = 16 * 1024 * 1024
    path = tmp_path / "f"
    writeback = files.Writeback()
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        for at in range(0, size, 256 * 1024):
            files.write_at(fd, os.urandom(256 * 1024), at, writeback)
        os.fsync(fd)  # written back, and still cached
        resident = subprocess.run(["fincore", "-b", "-n", "-r", "-o", "RES", str(path)],
                                  capture_output=True, text=True, check=True, timeout=30)
    finally:
        os.close(fd)
    assert int(resident.stdout) == size


def test_write_at_counts_bytes_of_a_view_whose_items_are_wider_than_one() -> None:
    import array

    data = array.array("I", range(3 * files.WRITE_SLICE))  # items of 4 bytes
    fd = os.memfd_create("wide")
    try:
        files.write_at(fd, memoryview(data), 5)
        assert os.pread(fd, len(data) * 4 + 10, 0) == bytes(5) + data.tobytes()
    finally:
        os.close(fd)
