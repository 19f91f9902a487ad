"""Swarm ids that ignore the name, shared folders (collections), --only, the fetch lock,
share's early argument checks, and long names: real processes on loopback where it is
the behaviour of a command, the manifest code where it is a rule about bytes."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from p2pshare import files as files_module
from p2pshare import limits
from p2pshare.cli.exits import Exit
from p2pshare.errors import IntegrityError, RemoteProtocolError
from p2pshare.index.server import IndexServer
from p2pshare.swarm import manifest as manifest_module
from p2pshare.swarm import tree
from p2pshare.swarm.manifest import Manifest, TreeFile
from p2pshare.swarm.session import Fetch, SwarmPeer
from p2pshare.swarm.storage import PieceFile, hash_file, hash_tree, scan_tree
from p2pshare.swarm.tracker import Tracker
from p2pshare.swarm.tree import Occupied, Target

from ..aio import HOST, arun, serving
from ..helpers import DEADLINE, cli_env, run_cli, wait_for
from .procs import LOCAL, fetch, files, killed_fetch, seeder, server, verified_pieces

DATA = bytes(range(256)) * 100  # 25,600 bytes: two pieces of 16 KiB
PIECE = 16384


def digests(data: bytes) -> tuple[bytes, ...]:
    return tuple(hashlib.sha256(data[i:i + PIECE]).digest() for i in range(0, len(data), PIECE))


def tree_manifest(files: dict[str, bytes], name: str = "tree") -> Manifest:
    paths = sorted(files)
    return Manifest(name, sum(len(files[p]) for p in paths), PIECE,
                    tuple(d for p in paths for d in digests(files[p])),
                    tuple(TreeFile(p, len(files[p])) for p in paths))


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ------------------------------------------------------------------ the id and the name
def test_renaming_keeps_the_id_and_the_name_is_checked_metadata() -> None:
    one = Manifest("a.bin", len(DATA), PIECE, digests(DATA))
    two = Manifest("renamed.bin", len(DATA), PIECE, digests(DATA))
    assert one.id == two.id and one.to_bytes() != two.to_bytes()
    # The name may change on the way (it is not what the id vouches for) ...
    assert Manifest.from_bytes(two.to_bytes(), one.id).name == "renamed.bin"
    # ... but it is still checked, and any change of content is caught.
    obj = json.loads(one.to_bytes())
    with pytest.raises(RemoteProtocolError):
        Manifest.from_bytes(canonical({**obj, "name": "../evil"}), one.id)
    with pytest.raises(IntegrityError):
        Manifest.from_bytes(canonical({**obj, "size": len(DATA) - 1}), one.id)
    with pytest.raises(RemoteProtocolError):  # not canonical
        Manifest.from_bytes(json.dumps(obj).encode(), one.id)


def test_a_collections_id_covers_its_paths() -> None:
    tree = tree_manifest({"a.txt": b"aa", "docs/b.txt": DATA})
    moved = tree_manifest({"a.txt": b"aa", "doc/b.txt": DATA})
    assert tree.id != moved.id and tree.id == tree.renamed("other").id
    assert tree.kind == "folder" and tree.count == 3  # pieces aligned to each file
    assert [tree.file_of(i) for i in range(3)] == [0, 1, 1]
    assert (tree.offset(2), tree.length(2)) == (PIECE, len(DATA) - PIECE)
    assert tree.bytes_in(0b110) == len(DATA) and tree.bytes_in(0b1) == 2
    assert Manifest.from_bytes(tree.to_bytes(), tree.id) == tree


@pytest.mark.parametrize("paths", [
    ["../x"], ["/etc/passwd"], ["a//b"], ["a/./b"], ["a/../b"], [".hidden"], ["a\\b"],
    ["b", "a"],  # out of order
    ["a", "a"],  # twice
    ["a", "a/b"],  # a file inside a file
    ["CON"], ["x" * 256],
    ["/".join(["d"] * (limits.MAX_PATH_DEPTH + 1))],
    ["/".join(["d" * 200] * 6)],  # over MAX_PATH_BYTES
])
def test_hostile_collection_paths_are_refused(paths: list[str]) -> None:
    obj = json.loads(tree_manifest({"a.txt": b"x"}).to_bytes())
    obj["files"] = [{"path": p, "size": 0} for p in paths]
    obj.update(size=0, pieces=[])
    with pytest.raises(RemoteProtocolError):
        Manifest.from_bytes(canonical(obj))


def test_collection_budgets_are_checked_on_receive() -> None:
    obj = json.loads(tree_manifest({"a.txt": b"x"}).to_bytes())
    many = [{"path": f"{i:05}", "size": 0} for i in range(limits.MAX_COLLECTION_FILES + 1)]
    with pytest.raises(RemoteProtocolError):
        Manifest.from_bytes(canonical({**obj, "files": many, "size": 0, "pieces": []}))
    with pytest.raises(RemoteProtocolError):  # sizes that do not add up
        Manifest.from_bytes(canonical({**obj, "size": 2}))
    with pytest.raises(RemoteProtocolError):  # a folder of no file
        Manifest.from_bytes(canonical({**obj, "files": []}))


def test_each_distinct_path_component_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10,000 paths 32 deep are 320,000 components: checking each one in Python cost the
    # tracker seconds of its event loop per ANNOUNCE of a 1 MiB manifest; a collection
    # repeats its folder names in every path below them.
    paths = sorted("/".join([*"abcdefghijklmnopqrstuvwxyz", "x", "y", "z", f"{i:05}", "f"])
                   for i in range(limits.MAX_COLLECTION_FILES))
    obj = json.loads(tree_manifest({"a.txt": b"x"}).to_bytes())
    obj.update(files=[{"path": p, "size": 0} for p in paths], size=0, pieces=[])
    checked: list[str] = []
    real = manifest_module.local

    def counted(name: str) -> str:
        checked.append(name)
        return real(name)

    monkeypatch.setattr(manifest_module, "local", counted)
    assert len(Manifest.from_bytes(canonical(obj)).files) == len(paths)
    distinct = {part for p in paths for part in p.split("/")}
    assert len(checked) <= len(distinct) + 1  # and the name


def test_scan_skips_symlinks_and_empty_folders(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "sub" / "empty-folder").mkdir(parents=True)
    (root / "sub" / "b.txt").write_bytes(DATA)
    (root / ".hidden").write_bytes(b"h")
    (root / "empty").write_bytes(b"")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"secret")
    (root / "link-dir").symlink_to(tmp_path / "outside")
    (root / "link-file").symlink_to(tmp_path / "outside" / "secret")
    sources = scan_tree(root)
    assert [s.path for s in sources] == ["_.hidden", "empty", "sub/b.txt"]
    manifest = hash_tree(root, sources, PIECE)
    assert manifest.name == "tree" and manifest.count == 3 and manifest.size == len(DATA) + 1


def test_a_symlink_named_on_the_command_line_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.bin").write_bytes(DATA)
    (tmp_path / "link.bin").symlink_to(tmp_path / "real.bin")
    manifest = hash_file(tmp_path / "link.bin", PIECE)
    assert manifest.name == "link.bin" and manifest.size == len(DATA)
    PieceFile.open_complete(tmp_path / "link.bin", manifest).close()


def test_two_files_whose_local_names_coincide_stop_the_share(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a:b").write_bytes(b"one")
    (root / "a_b").write_bytes(b"two")  # "a:b" is "a_b" once made safe
    with pytest.raises(RemoteProtocolError, match="would both be"):
        scan_tree(root)


@arun
async def test_fetch_only_asks_for_the_pieces_of_the_files_it_picks(tmp_path: Path) -> None:
    root = tmp_path / "seed" / "tree"
    (root / "big").mkdir(parents=True)
    (root / "big" / "one.bin").write_bytes(os.urandom(5 * PIECE))
    (root / "big" / "two.bin").write_bytes(os.urandom(3 * PIECE + 7))
    (root / "small.txt").write_bytes(b"small" * 1000)
    sources = scan_tree(root)
    manifest = hash_tree(root, sources, PIECE)
    out = tmp_path / "out"
    async with serving(IndexServer(tracker=Tracker())) as port, \
            SwarmPeer.open(HOST, port, listen=HOST) as seed, \
            SwarmPeer.open(HOST, port, listen=HOST) as me:
        await seed.share(root, manifest, sources)
        job = Fetch(me, out, ["*.txt", "big/t*"])
        final = await job.run(job.prepare(await job.resolve(manifest.id)))
        assert seed.server is not None
        sent = seed.server.bytes_sent
    assert final == out / "tree"
    assert listing(final) == {"big/two.bin": (root / "big" / "two.bin").read_bytes(),
                              "small.txt": b"small" * 1000}
    assert sent == 3 * PIECE + 7 + 5000  # not a byte of big/one.bin


@arun
async def test_publishing_starts_every_files_write_back_before_flushing_any(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files under ``WRITEBACK_EVERY`` were never written back while they came: the disk
    gets all of them at once, then each is flushed (``tree.Target.publish``)."""
    root = tmp_path / "seed" / "tree"
    root.mkdir(parents=True)
    for name in ("a.bin", "b.bin", "c.bin"):
        (root / name).write_bytes(os.urandom(2 * PIECE + 3))
    sources = scan_tree(root)
    manifest = hash_tree(root, sources, PIECE)
    calls: list[tuple[str, int]] = []
    start, fsync = files_module.start_writeback, os.fsync

    def started(fd: int) -> None:
        calls.append(("start", fd))
        start(fd)

    def flushed(fd: int) -> None:
        calls.append(("fsync", fd))
        fsync(fd)

    monkeypatch.setattr(tree, "start_writeback", started)
    async with serving(IndexServer(tracker=Tracker())) as port, \
            SwarmPeer.open(HOST, port, listen=HOST) as seed, \
            SwarmPeer.open(HOST, port, listen=HOST) as me:
        await seed.share(root, manifest, sources)
        job = Fetch(me, tmp_path / "out")
        download = job.prepare(manifest)
        files = {h.fileno() for h in download.file.handles if h is not None}
        monkeypatch.setattr(os, "fsync", flushed)
        final = await job.run(download)
        monkeypatch.setattr(os, "fsync", fsync)
    assert listing(final) == {name: (root / name).read_bytes()
                              for name in ("a.bin", "b.bin", "c.bin")}
    assert len(files) == 3
    first_flush = min(i for i, (what, fd) in enumerate(calls) if what == "fsync" and fd in files)
    assert {fd for what, fd in calls[:first_flush] if what == "start"} == files


def test_fetch_never_follows_a_symlink_planted_in_the_tree(tmp_path: Path) -> None:
    manifest = tree_manifest({"docs/b.txt": DATA})
    out, outside = tmp_path / "out", tmp_path / "outside"
    (out / "tree").mkdir(parents=True)
    outside.mkdir()
    (out / "tree" / "docs").symlink_to(outside)
    target = Target(out, manifest, [0])
    with pytest.raises(OSError):
        target.open()
    assert list(outside.iterdir()) == []


def test_fetch_follows_a_download_folder_that_is_itself_a_symlink(tmp_path: Path) -> None:
    # --out ~/Downloads where Downloads is a link the user made (as /tmp is on macOS):
    # only the components the sender chose are refused as links, not the folder we were given.
    manifest = tree_manifest({"docs/b.txt": DATA})
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    target = Target(tmp_path / "link", manifest, [0])
    piece_file = target.open()
    try:
        assert (tmp_path / "real" / "tree" / "docs").is_dir()
    finally:
        piece_file.close()
        target.close()


def test_publishing_never_replaces_a_file_that_appeared_meanwhile(tmp_path: Path) -> None:
    # Another fetch of another swarm of the same name, or the user, made the name while
    # this download ran: the name was free at the start, and the newcomer is kept.
    manifest = tree_manifest({"a.txt": DATA, "b.txt": DATA})
    target = Target(tmp_path, manifest, [0, 1])
    piece_file = target.open()
    try:
        for index in range(manifest.count):
            start = manifest.offset(index)
            piece_file.write(index, DATA[start:start + manifest.length(index)])
        (tmp_path / "tree" / "b.txt").write_bytes(b"mine")
        with pytest.raises(Occupied, match="b.txt"):  # a local trouble: exit status 7
            target.publish(piece_file.handles)
    finally:
        piece_file.close()
        target.close()
    assert (tmp_path / "tree" / "b.txt").read_bytes() == b"mine"
    assert (tmp_path / "tree" / "a.txt").read_bytes() == DATA


_OPEN_MANY = """
import sys
from pathlib import Path
from p2pshare.errors import LocalIOError
from p2pshare.swarm.manifest import Manifest, TreeFile
from p2pshare.swarm.tree import Target
files = tuple(TreeFile(f"d{i:03}/f", 0) for i in range(400))
try:
    Target(Path(sys.argv[1]), Manifest("tree", 0, 16384, (), files), list(range(400))).open()
except LocalIOError as exc:
    print("refused:", exc)
"""


def test_a_fetch_that_cannot_open_its_files_refuses_before_creating_any(tmp_path: Path) -> None:
    # 400 files in 400 folders, each held open for the whole fetch, under a hard limit of
    # 512 open files: one line, and not a folder or temporary file left behind in --out.
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    done = subprocess.run([sys.executable, "-c", _OPEN_MANY, str(tmp_path)], env=cli_env(),
                          capture_output=True, text=True, timeout=DEADLINE,
                          preexec_fn=low_limit)
    assert done.returncode == 0 and done.stdout.startswith("refused:"), done.stderr
    assert "--only" in done.stdout and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ real processes
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "seed" / "photos"
    (root / "2024" / "summer").mkdir(parents=True)
    (root / "empty-folder").mkdir()
    (root / "2024" / "summer" / "beach.jpg").write_bytes(os.urandom(300_000))
    (root / "2024" / "notes.txt").write_bytes(b"notes\n" * 1000)
    (root / "readme.txt").write_bytes(b"hello\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "escape").symlink_to(tmp_path)
    return root


def listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_a_folder_is_shared_and_fetched_as_one_swarm(folder: Path, tmp_path: Path) -> None:
    logs, out = tmp_path / "logs", tmp_path / "out"
    old = os.umask(0o002)  # inherited by the processes
    try:
        with server(logs) as address, seeder(folder, address, logs, "--piece-size", "16K"
                                             ) as swarm:
            fetched = fetch(swarm, address, out, logs).finish()
            [entry] = files(address)
    finally:
        os.umask(old)
    assert str(out / "photos") in fetched
    assert listing(out / "photos") == listing(folder)
    assert not (out / "photos" / "empty-folder").exists()  # empty folders are not shared
    assert not (out / "photos" / "escape").exists()  # nor symlinks
    assert sorted(os.listdir(out)) == ["photos"]  # no temporary, resume or lock file
    assert not [p for p in (out / "photos").rglob(".*")]
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (out / "photos").rglob("*") if p.is_file()}
    assert modes == {0o664}  # 0666 less the umask, like any file a program creates
    assert (entry["kind"], entry["files"], entry["name"]) == ("folder", 4, "photos")
    assert entry["size"] == sum(len(b) for b in listing(folder).values())


def test_fetch_only_picks_files(folder: Path, tmp_path: Path) -> None:
    logs, out = tmp_path / "logs", tmp_path / "out"
    with server(logs) as address, seeder(folder, address, logs, "--piece-size", "16K"
                                         ) as swarm:
        fetch(swarm, address, out, logs, "--only", "*.txt", "--only", "2024/summer/*"
              ).finish()
        assert listing(out / "photos") == listing(folder)  # every file matched
        out2 = tmp_path / "out2"
        fetch(swarm, address, out2, logs, "--only", "2024/*.txt").finish()
        assert listing(out2 / "photos") == {"2024/notes.txt": b"notes\n" * 1000}
        assert sorted(os.listdir(out2 / "photos")) == ["2024"]  # nothing else created
        # A later run for more files keeps what is there and adds to it.
        fetch(swarm, address, out2, logs, "--only", "readme.txt").finish()
        assert sorted(listing(out2 / "photos")) == ["2024/notes.txt", "readme.txt"]
        none = run_cli(["fetch", swarm, "--server", address, "--out", str(out2), *LOCAL,
                        "--only", "*.pdf"])
        assert none.returncode != 0 and "matches" in none.stderr


def test_a_collection_fetch_killed_midway_resumes(tmp_path: Path) -> None:
    root = tmp_path / "seed" / "set"
    root.mkdir(parents=True)
    for i in range(4):
        (root / f"part{i}.bin").write_bytes(os.urandom(1_500_000))
    logs, out = tmp_path / "logs", tmp_path / "out"
    with server(logs) as address:
        with killed_fetch(root, address, out, logs) as swarm:
            assert 8 <= verified_pieces(out) < 4 * 23
            assert not [p for p in (out / "set").iterdir() if not p.name.startswith(".")]
            with seeder(root, address, logs, "--piece-size", "64K") as again:
                assert again == swarm
                output = fetch(swarm, address, out, logs).finish()
    assert "resuming set" in output
    assert listing(out / "set") == listing(root)
    assert sorted(os.listdir(out)) == ["set"]


def test_two_fetches_into_one_folder_are_locked_against_each_other(tmp_path: Path) -> None:
    data = tmp_path / "seed" / "data.bin"
    data.parent.mkdir()
    data.write_bytes(os.urandom(2_000_000))
    logs, out = tmp_path / "logs", tmp_path / "out"
    with server(logs) as address, seeder(data, address, logs, "--piece-size", "64K",
                                         "--max-upload-rate", "1M") as swarm:
        first = fetch(swarm, address, out, logs)
        wait_for(lambda: verified_pieces(out) >= 1, what="the first fetch under way")
        with first.paused():  # still holding the folder while the second tries
            second = run_cli(["fetch", swarm, "--server", address, "--out", str(out), *LOCAL])
        assert second.returncode == Exit.LOCAL, second.stderr
        assert "another fetch" in second.stderr
        first.finish()
    assert (out / "data.bin").read_bytes() == data.read_bytes()
    assert os.listdir(out) == ["data.bin"]  # the lock file went with its holder


def test_share_checks_every_path_before_hashing(tmp_path: Path) -> None:
    big = tmp_path / "big.iso"
    with open(big, "wb") as handle:  # sparse: costs no disk, hashing it would take a while
        handle.truncate(2 * limits.GiB)
    done = run_cli(["share", str(big), str(tmp_path / "missing.txt"), "--server",
                    "127.0.0.1:9", *LOCAL])
    assert done.returncode == Exit.LOCAL
    assert "missing.txt" in done.stderr and "hashing" not in done.stderr
    bad_piece = run_cli(["share", str(big), "--piece-size", "1K", "--server", "127.0.0.1:9"])
    assert bad_piece.returncode == Exit.USAGE and "hashing" not in bad_piece.stderr
    bad_port = run_cli(["share", str(big), "--port", "70000", "--server", "127.0.0.1:9"])
    assert bad_port.returncode == Exit.USAGE and "hashing" not in bad_port.stderr
