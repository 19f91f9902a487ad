"""A peer's life as a user runs it (issue #13): real processes on loopback.

Downloads take the mode any downloader gives (``0666`` less the umask); a peer started
before its server waits for it; a running peer notices files added to its folder; ``-v``
logs each message as it crosses the wire; a client that reached the wrong kind of server
says what it reached.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

from p2pshare.samples import write_sample_rfcs

from ..aio import HOST
from ..di.test_di_cli import processes, start_peer, start_rs
from ..helpers import run_cli
from .test_cli import peer, process, server  # noqa: F401 (server: a fixture)

GROUP_WRITABLE = 0o002


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """The children started in the block inherit ``mask``."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


# ------------------------------------------------------------------------ item 3: file mode
def test_get_creates_the_file_0666_less_the_umask(server: str,  # noqa: F811
                                                   tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "b", {2345: 3000})
    out = tmp_path / "out"
    out.mkdir()
    with peer(server, tmp_path / "b"), umask(GROUP_WRITABLE):
        ok(run_cli(["get", "2345", "--server", server, "--dir", str(out)]))
    assert mode_of(out / "rfc2345.txt") == 0o664


def test_di_get_creates_the_file_0666_less_the_umask(tmp_path: Path) -> None:
    write_sample_rfcs(tmp_path / "b", {8: 2048})
    out = tmp_path / "out"
    out.mkdir()
    with processes() as started:
        rs = f"{HOST}:{start_rs(started, '--no-messages')}"
        start_peer(started, int(rs.rsplit(':', 1)[1]), tmp_path / "b")
        with umask(GROUP_WRITABLE):
            ok(run_cli(["di-get", "8", "--rs", rs, "--dir", str(out)]))
    assert mode_of(out / "rfc8.txt") == 0o664
