"""What a new user of ``p2pshare torrent``, ``seed`` and ``fetch`` sees when a link or a
torrent is wrong, and while a torrent is made: real processes, nothing on the network."""

from __future__ import annotations

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

