"""The one atomic-download helper: whole file under its final name, or nothing."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from p2pshare import files


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
    # 0o644 as asked of os.open; the umask applies, as for any file a program creates.
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
