"""``p2pshare seed`` and ``p2pshare fetch`` of torrents: real processes on loopback, with
each other and with libtorrent, v1, v2 and hybrid, a file and a folder."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from p2pshare.protocol.metainfo import format_magnet, magnet_of, parse_torrent

from ..helpers import wait_for
from ..swarm import procs
from ..swarm.procs import Proc
from .lt import K, LtPeer, hidden_left, make_torrent, same_tree, write_data

LOCAL = ["--listen", "127.0.0.1"]
# Sizes in 16 KiB blocks (K); the torrents have pieces of 32 KiB.
SHAPES = {"file": [20 * K + 5], "folder": [5 * K + 3, 7, 0, 4 * K]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _seed(tmp_path: Path, kind: str, shape: str, *extra: str) -> tuple[Proc, Path, Path]:
    """A ``p2pshare seed`` of fresh data; returns it, the data and the .torrent."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    data = write_data(data_dir, f"{shape}-{kind}", SHAPES[shape])
    torrent = tmp_path / f"{shape}-{kind}.torrent"
    torrent.write_bytes(make_torrent(data, kind))
    seed = Proc(["seed", str(torrent), "--dir", str(data_dir), *LOCAL, *extra],
                tmp_path / "logs")
    return seed, data, torrent


def _port(proc: Proc) -> int:
    return int(proc.wait_line(r" port (\d+)$").group(1))


def _verified(out: Path) -> bool:
    """Whether a fetch into ``out`` has recorded a verified piece (it is connected)."""
    return any(p.name.endswith(".resume.json") and json.loads(p.read_bytes()).get("verified")
               for p in out.glob(".p2pshare-*"))


def _fetch(tmp_path: Path, target: str, port: int, *extra: str, out: str = "out") -> Proc:
    return Proc(["fetch", target, "--out", str(tmp_path / out), "--peer", f"127.0.0.1:{port}",
                 *LOCAL, *extra], tmp_path / "logs")


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
@pytest.mark.parametrize("shape", ["file", "folder"])
def test_p2pshare_seed_to_p2pshare_fetch(tmp_path: Path, kind: str, shape: str) -> None:
    seed, data, torrent = _seed(tmp_path, kind, shape)
    try:
        fetch = _fetch(tmp_path, str(torrent), _port(seed), "--no-upload")
        fetch.finish()
        assert same_tree(data, tmp_path / "out" / data.name)
        assert hidden_left(tmp_path / "out") == []
    finally:
        seed.stop()


@pytest.mark.parametrize(("kind", "magnet"), [("v1", False), ("v1", True), ("v2", False),
                                             ("v2", True), ("hybrid", True)])
def test_fetch_from_libtorrent(tmp_path: Path, kind: str, magnet: bool) -> None:
    data = write_data(tmp_path, "lt.bin", [90 * K + 1])
    raw = make_torrent(data, kind)
    theirs = LtPeer(tmp_path, torrent=raw, seed=True)
    try:
        torrent = tmp_path / "lt.torrent"
        torrent.write_bytes(raw)
        target = str(torrent)
        if magnet:
            import libtorrent as lt
            target = lt.make_magnet_uri(lt.torrent_info(raw))
        _fetch(tmp_path, target, theirs.port, "--no-upload").finish()
        assert same_tree(data, tmp_path / "out" / "lt.bin")
    finally:
        theirs.close()


@pytest.mark.parametrize(("kind", "magnet"), [("v1", False), ("v2", False), ("hybrid", False),
                                             ("v1", True), ("v2", True)])
def test_libtorrent_fetches_from_seed(tmp_path: Path, kind: str, magnet: bool) -> None:
    seed, data, torrent = _seed(tmp_path, kind, "folder")
    try:
        port = _port(seed)
        save = tmp_path / "lt-out"
        save.mkdir()
        raw = torrent.read_bytes()
        link = format_magnet(magnet_of(parse_torrent(raw)))
        theirs = LtPeer(save, magnet=link) if magnet else LtPeer(save, torrent=raw)
        try:
            theirs.connect(port)
            theirs.wait_seeding()
        finally:
            theirs.close()
        assert same_tree(data, save / data.name)
    finally:
        seed.stop()


def test_p2pshare_fetches_a_v2_magnet_from_p2pshare(tmp_path: Path) -> None:
    """The metadata (BEP 9), then the piece layers by hash requests (BEP 52)."""
    seed, data, torrent = _seed(tmp_path, "v2", "folder")
    try:
        link = format_magnet(magnet_of(parse_torrent(torrent.read_bytes())))
        _fetch(tmp_path, link, _port(seed), "--no-upload").finish()
        assert same_tree(data, tmp_path / "out" / data.name)
    finally:
        seed.stop()


def test_fetch_then_seed_to_libtorrent(tmp_path: Path) -> None:
    seed, data, torrent = _seed(tmp_path, "hybrid", "file")
    try:
        fetch = _fetch(tmp_path, str(torrent), _port(seed), "--seed")
        port = int(fetch.wait_line(r"on port (\d+) until interrupted").group(1))
    finally:
        seed.stop()
    try:
        save = tmp_path / "lt-out"
        save.mkdir()
        theirs = LtPeer(save, torrent=torrent.read_bytes())
        try:
            theirs.connect(port)
            theirs.wait_seeding()
        finally:
            theirs.close()
        assert same_tree(data, save / data.name)
    finally:
        fetch.stop()


def test_a_fetch_finds_another_fetch_by_pex(tmp_path: Path) -> None:
    """The seed tells the second fetch of the first, still downloading (BEP 11)."""
    seed, data, torrent = _seed(tmp_path, "v1", "file")
    try:
        port = _port(seed)
        first = _fetch(tmp_path, str(torrent), port, "--max-download-rate", "128K",
                       out="first")
        wait_for(lambda: _verified(tmp_path / "first"), what="the first fetch under way")
        with first.paused():  # still downloading, connected to the seed, meanwhile
            second = _fetch(tmp_path, str(torrent), port, "-v", out="second")
            second.wait_line(r"\[BT\] 127.0.0.1:\d+ told of by 127.0.0.1:" + str(port))
            second.finish()
        first.finish()
        assert same_tree(data, tmp_path / "second" / data.name)
    finally:
        seed.stop()


def test_bad_peer_is_banned_and_the_download_completes(tmp_path: Path) -> None:
    good, data, torrent = _seed(tmp_path, "v1", "file")
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / data.name).write_bytes(data.read_bytes())
    bad = Proc(["seed", str(torrent), "--dir", str(bad_dir), *LOCAL], tmp_path / "logs")
    try:
        bad_port = _port(bad)
        # Verified at start, changed after: it now sends blocks that fail their hash.
        (bad_dir / data.name).write_bytes(bytes(len(data.read_bytes())))
        fetch = Proc(["fetch", str(torrent), "--out", str(tmp_path / "out"), "--peer",
                      f"127.0.0.1:{bad_port}", "--peer", f"127.0.0.1:{_port(good)}",
                      *LOCAL, "--no-upload", "-v"], tmp_path / "logs")
        output = fetch.finish()
        assert "banned" in output
        assert same_tree(data, tmp_path / "out" / data.name)
    finally:
        good.stop()
        bad.stop()


def test_resume_after_sigkill(tmp_path: Path) -> None:
    seed, data, torrent = _seed(tmp_path, "hybrid", "file", "--max-upload-rate", "40K")
    try:
        port = _port(seed)
        out = tmp_path / "out"
        first = _fetch(tmp_path, str(torrent), port, "--no-upload")
        wait_for(lambda: _verified(out), what="a piece recorded as verified")
        first.stop(signal.SIGKILL)
        first.popen.wait()
        fast = Proc(["seed", str(torrent), "--dir", str(data.parent), *LOCAL], tmp_path / "logs")
        try:
            second = _fetch(tmp_path, str(torrent), _port(fast), "--no-upload")
            assert "resuming" in second.finish()
            assert same_tree(data, out / data.name)
        finally:
            fast.stop()
    finally:
        seed.stop()


@pytest.mark.skipif(shutil.which("opentracker") is None, reason="opentracker not installed")
@pytest.mark.parametrize("magnet", [False, True], ids=["torrent", "magnet"])
def test_peers_meet_through_the_tracker(tmp_path: Path, magnet: bool) -> None:
    """opentracker (the reference tracker) lists the seed; the fetch is given no peer (a
    magnet link names the tracker with ``tr``)."""
    tracker_port = free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data = write_data(data_dir, "tracked.bin", [6 * K])
    torrent = tmp_path / "tracked.torrent"
    torrent.write_bytes(make_torrent(
        data, "hybrid", trackers=(f"http://127.0.0.1:{tracker_port}/announce",)))
    parsed = parse_torrent(torrent.read_bytes())
    assert parsed.v1_hash is not None and parsed.v2_hash is not None
    v1_hash = parsed.v1_hash
    home = tmp_path / "opentracker"  # it chroots here, then runs as nobody
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    # This build of opentracker serves the torrents of its whitelist only.
    (home / "whitelist").write_text(f"{parsed.v1_hash.hex()}\n{parsed.v2_hash[:20].hex()}\n")
    (home / "whitelist").chmod(0o644)
    tracker = subprocess.Popen(["opentracker", "-i", "127.0.0.1", "-p", str(tracker_port),
                                "-P", str(tracker_port), "-d", str(home), "-u", "nobody",
                                "-w", "whitelist"], cwd=home, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listed(tracker_port, v1_hash), what="the whitelist loaded")
        seed = Proc(["seed", str(torrent), "--dir", str(data_dir), *LOCAL], tmp_path / "logs")
        try:
            seed.wait_line(r"announced to http://\S+: \d+ peers")
            target = format_magnet(magnet_of(parsed)) if magnet else str(torrent)
            fetch = Proc(["fetch", target, "--out", str(tmp_path / "out"), *LOCAL],
                         tmp_path / "logs")
            fetch.finish()
            assert same_tree(data, tmp_path / "out" / data.name)
        finally:
            seed.stop()
    finally:
        tracker.terminate()
        tracker.wait()


def _listed(port: int, info_hash: bytes) -> bool:
    """Whether opentracker answers an announce of ``info_hash`` (it loads its whitelist
    after it starts listening)."""
    query = urllib.parse.urlencode({"info_hash": info_hash, "peer_id": b"-TEST00-" + bytes(12),
                                    "port": 1, "uploaded": 0, "downloaded": 0, "left": 1,
                                    "compact": 1})
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/announce?{query}",
                                    timeout=5) as answer:
            return b"not authorized" not in answer.read()
    except OSError:
        return False


def test_one_download_from_a_swarm_and_a_torrent_at_once(tmp_path: Path) -> None:
    """A single file shared as a swarm and seeded as a torrent with the same piece size:
    ``fetch FILE.torrent --swarm ID`` takes pieces from both kinds of peers (bt.mixed)."""
    seed, data, torrent = _seed(tmp_path, "hybrid", "file", "--max-upload-rate", "48K")
    logs = tmp_path / "logs"
    try:
        port = _port(seed)
        with procs.server(logs) as address, \
                procs.seeder(data, address, logs, "--piece-size", "32K",
                             "--max-upload-rate", "48K") as swarm:
            fetch = _fetch(tmp_path, str(torrent), port, "--swarm", swarm, "--server",
                           address, "--json", "--no-upload")
            events = [json.loads(line) for line in fetch.finish().splitlines()
                      if line.startswith("{")]
        assert same_tree(data, tmp_path / "out" / data.name)
        last = [e for e in events if e["event"] == "progress"][-1]
        assert last["sources"] == 2  # a BitTorrent peer and a swarm peer both sent pieces
    finally:
        seed.stop()


@pytest.mark.parametrize("scheme", ["http", "udp"])
def test_a_magnet_fetch_finds_its_seed_through_our_tracker(tmp_path: Path, scheme: str) -> None:
    """``p2pshare server``'s tracker lists the seed to a magnet fetch given no peer and no
    port: the fetch announces port 0 (it does not listen before it has the metadata), which
    the tracker answers without listing it."""
    server = Proc(["server", *LOCAL, "--port", "0", "--http-port", "0", "--udp-port", "0"],
                  tmp_path / "logs")
    try:
        url = server.wait_line(rf"\[Tracker\] {scheme.upper()} on (\S+)").group(1)
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        data = write_data(data_dir, "tracked.bin", [6 * K])
        raw = make_torrent(data, "hybrid", trackers=(url,))
        torrent = tmp_path / "tracked.torrent"
        torrent.write_bytes(raw)
        seed = Proc(["seed", str(torrent), "--dir", str(data_dir), *LOCAL], tmp_path / "logs")
        try:
            seed.wait_line(r"announced to \S+: \d+ peers")
            link = format_magnet(magnet_of(parse_torrent(raw)))
            fetch = Proc(["fetch", link, "--out", str(tmp_path / "out"), "--timeout", "20",
                          *LOCAL], tmp_path / "logs")
            fetch.finish()
            assert same_tree(data, tmp_path / "out" / data.name)
        finally:
            seed.stop()
    finally:
        server.stop()
