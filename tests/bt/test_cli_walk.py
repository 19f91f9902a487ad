"""What a new user of ``p2pshare torrent``, ``seed`` and ``fetch`` sees when a link or a
torrent is wrong, and while a torrent is made: real processes, nothing on the network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..helpers import run_cli


@pytest.mark.parametrize("link", ["magnet:?xt=urn:btih:zz", "magnet:?dn=nothing"])
def test_a_malformed_magnet_link_is_a_usage_error(tmp_path: Path, link: str) -> None:
    """Exit 2 and the reason at once (not exit 4, as if no peer had answered)."""
    done = run_cli(["fetch", link, "--out", str(tmp_path / "out"), "--timeout", "20"])
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("p2pshare: ") and "magnet" in done.stderr
    assert "Traceback" not in done.stderr


def test_hashing_progress_of_a_padded_hybrid_stops_at_100_percent(tmp_path: Path) -> None:
    """A hybrid of a folder has pad files after its files; the bytes of those zeros are
    not the user's bytes and must not carry the progress past 100 %."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a" * 100_000)
    (folder / "b.bin").write_bytes(b"b" * 50_001)
    done = run_cli(["torrent", "create", str(folder), "-o", str(tmp_path / "f.torrent")])
    assert done.returncode == 0, done.stderr
    shown = [int(p) for p in re.findall(r"\((\d+)%\)", done.stderr)]
    assert shown and max(shown) == 100, done.stderr
    assert "-0 s" not in done.stderr
