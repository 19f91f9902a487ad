"""``p2pshare torrent create`` and ``torrent show`` as a user runs them: real processes."""

from __future__ import annotations

import json
from pathlib import Path

from p2pshare import limits
from p2pshare.cli.exits import Exit
from p2pshare.protocol.metainfo import parse_magnet, parse_torrent
from tests.helpers import run_cli


def make_folder(root: Path) -> Path:
    share = root / "share"
    (share / "sub").mkdir(parents=True)
    (share / "sub" / "a.bin").write_bytes(b"a" * 70_000)
    (share / "b.txt").write_bytes(b"hello")
    (share / "empty").write_bytes(b"")
    return share


def test_create_then_show(tmp_path: Path) -> None:
    share = make_folder(tmp_path)
    out = tmp_path / "out.torrent"
    made = run_cli(["torrent", "create", str(share), "-o", str(out), "--piece-size", "32K",
                    "--tracker", "http://127.0.0.1:9/announce", "--tracker", "udp://[::1]:9"])
    assert made.returncode == Exit.OK, made.stderr
    torrent = parse_torrent(out.read_bytes())
    magnet = parse_magnet(made.stdout.strip())
    assert (magnet.v1_hash, magnet.v2_hash) == (torrent.v1_hash, torrent.v2_hash)
    assert torrent.v1_hash and torrent.v2_hash and torrent.piece_length == 32 * 1024
    assert magnet.trackers == ("http://127.0.0.1:9/announce", "udp://[::1]:9")
    assert not list(tmp_path.glob(".*.part"))  # written whole, no temporary left

    shown = run_cli(["torrent", "show", str(out), "--json"])
    assert shown.returncode == Exit.OK, shown.stderr
    facts = json.loads(shown.stdout)
    assert facts["v2_info_hash"] == torrent.v2_hash.hex()
    assert facts["files"] == [{"path": "share/b.txt", "size": 5},
                              {"path": "share/empty", "size": 0},
                              {"path": "share/sub/a.bin", "size": 70_000}]
    assert facts["trackers"] == [["http://127.0.0.1:9/announce"], ["udp://[::1]:9"]]
    text = run_cli(["torrent", "show", str(out)]).stdout
    assert f"v1 info-hash: {torrent.v1_hash.hex()}" in text and "share/sub/a.bin" in text


def test_kinds_and_default_name(tmp_path: Path) -> None:
    share = make_folder(tmp_path)
    for kind in ("--v1", "--v2", "--hybrid"):
        made = run_cli(["torrent", "create", str(share / "sub" / "a.bin"), kind], cwd=tmp_path)
        assert made.returncode == Exit.OK, made.stderr
        torrent = parse_torrent((tmp_path / "a.bin.torrent").read_bytes())
        assert (torrent.v1_hash is not None, torrent.v2_hash is not None) == {
            "--v1": (True, False), "--v2": (False, True), "--hybrid": (True, True)}[kind]
        assert ("btih" in made.stdout, "btmh" in made.stdout) == (
            torrent.v1_hash is not None, torrent.v2_hash is not None)


def test_refusals(tmp_path: Path) -> None:
    share = make_folder(tmp_path)
    bad_size = run_cli(["torrent", "create", str(share), "--piece-size", "48K",
                        "-o", str(tmp_path / "x.torrent")])
    assert bad_size.returncode == Exit.USAGE and "piece size" in bad_size.stderr
    missing = run_cli(["torrent", "create", str(tmp_path / "nothing")])
    assert missing.returncode == Exit.LOCAL
    both = run_cli(["torrent", "create", str(share), "--v1", "--v2"])
    assert both.returncode == Exit.USAGE
    junk = tmp_path / "junk.torrent"
    junk.write_bytes(b"d4:infod4:name3:../ee")
    shown = run_cli(["torrent", "show", str(junk)])
    assert shown.returncode == Exit.FAILURE and "not a usable torrent" in shown.stderr
    assert run_cli(["torrent", "show", str(tmp_path / "none.torrent")]).returncode == Exit.LOCAL
    with (tmp_path / "huge.torrent").open("wb") as huge:  # sparse; refused, whatever its size
        huge.truncate(10 * limits.MAX_TORRENT_FILE)
    shown = run_cli(["torrent", "show", str(tmp_path / "huge.torrent")])
    assert shown.returncode == Exit.FAILURE and "over" in shown.stderr


def test_progress_on_stderr_unless_quiet(tmp_path: Path) -> None:
    share = make_folder(tmp_path)
    loud = run_cli(["torrent", "create", str(share), "-o", str(tmp_path / "1.torrent")])
    assert "hashing share: " in loud.stderr and loud.stdout.startswith("magnet:?")
    quiet = run_cli(["torrent", "create", str(share), "-q", "-o", str(tmp_path / "2.torrent")])
    assert quiet.returncode == Exit.OK and quiet.stderr == ""


def test_folder_given_as_dot_dot(tmp_path: Path) -> None:
    share = make_folder(tmp_path)
    made = run_cli(["torrent", "create", "..", "-o", str(tmp_path / "x.torrent")],
                   cwd=share / "sub")
    assert made.returncode == Exit.OK, made.stderr
    assert parse_torrent((tmp_path / "x.torrent").read_bytes()).name == "share"
