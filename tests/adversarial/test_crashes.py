"""Crashes: processes killed with SIGKILL at the worst moment, and what the others do.

Strategy: real ``p2pshare`` processes on loopback (``tests/swarm/procs.py`` runs them with
their output in files). After each crash the test checks the promise of issue 6: the
survivors notice and carry on, and no file under a final name is partial or corrupt.
Covered elsewhere, and not repeated here (docs/robustness.md lists them):
``tests/cli/test_cli.py::test_killed_peer_disappears_from_list`` (a CI peer killed: its
records vanish), ``tests/cli/test_cli.py::test_peer_reconnects_when_the_server_restarts``
(one peer, the index server killed and restarted), and
``tests/swarm/test_processes.py::test_leech_killed_mid_download_resumes`` (a downloader
killed, then resumed from its verified pieces).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from p2pshare import limits
from p2pshare.samples import sample_text, write_sample_rfcs

from ..aio import HOST, free_port
from ..helpers import DEADLINE, cli_env, run_cli, wait_for
from ..swarm.procs import LOCAL, Proc, fetch, running, seeder, server, verified_pieces

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def listed(address: str) -> set[tuple[int, str, int]]:
    done = run_cli(["list", "--server", address, "--json"])
    assert done.returncode == 0, done.stderr
    return {(r["rfc"], r["host"], r["port"]) for r in json.loads(done.stdout)}


def backs_off(proc: Proc, count: int) -> list[float]:
    """Wait for ``proc``'s first ``count`` retry delays; check that they double from
    ``RECONNECT_FIRST`` (each within its jitter, as logged to 0.01 s)."""
    found = wait_for(lambda: len(d := re.findall(r"retry in ([\d.]+) s", proc.output)) >= count
                     and d, what=f"{count} retries")
    delays = [float(d) for d in found]
    for n, delay in enumerate(delays[:count]):
        base = limits.RECONNECT_FIRST * 2 ** n
        spread = base * limits.RECONNECT_JITTER + 0.005
        assert base - spread <= delay <= base + spread, delays
    return delays


def final_files(folder: Path) -> list[str]:
    """Names in ``folder`` a user would take for files (not hidden temporaries)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


# ----------------------------------------------------------------------------- P2P-CI
def test_index_server_killed_peers_back_off_and_re_register_everything(
        tmp_path: Path) -> None:
    port = free_port()
    address = f"{HOST}:{port}"
    logs = tmp_path / "logs"
    folders = {}
    for n in range(3):
        folders[n] = tmp_path / f"peer{n}"
        write_sample_rfcs(folders[n], {100 + 10 * n + i: 2_000 for i in range(4)})
    args = ["server", "--host", HOST, "--port", str(port)]
    first = Proc(args, logs)
    first.wait_line("listening on")
    peers = [Proc(["peer", "--server", address, "--dir", str(folders[n]), "--hostname",
                   HOST, "--no-menu"], logs) for n in range(3)]
    try:
        ports = [int(p.wait_line(r"upload server on port (\d+)").group(1)) for p in peers]
        everything = {(100 + 10 * n + i, HOST, ports[n]) for n in range(3) for i in range(4)}
        wait_for(lambda: listed(address) == everything, what="every RFC registered")
        first.stop(signal.SIGKILL)
        for peer in peers:  # each noticed, and retries with a growing delay
            peer.wait_line("lost the index server")
            delays = backs_off(peer, 3)
        with running(args, logs) as second:
            second.wait_line("listening on")
            back = time.monotonic()
            wait_for(lambda: listed(address) == everything, what="every RFC registered again")
            shown = ", ".join(f"{d:.2f}" for d in delays[:4])
            print(f"\n[measure] index server killed: 3 peers logged retries after "
                  f"{shown} s...; all {len(everything)} records back "
                  f"{time.monotonic() - back:.1f} s after the restart")
        assert all(p.popen.poll() is None for p in peers)  # nobody gave up
    finally:
        for peer in peers:
            peer.stop()
        first.stop()


@contextmanager
def stalling_holder(size: int) -> Iterator[int]:
    """An upload server that answers GET 200 with Content-Length ``size``, sends half the
    body, and then nothing more until the test ends; yields its port."""
    done = threading.Event()
    listener = socket.create_server((HOST, 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"P2P-CI/1.0 200 OK\r\nContent-Length: %d\r\n"
                         b"Content-Type: text/plain\r\n\r\n" % size + b"x" * (size // 2))
            done.wait(3 * DEADLINE)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        listener.close()
        thread.join(timeout=DEADLINE)


def test_ci_downloader_killed_mid_file_leaves_no_final_file(tmp_path: Path) -> None:
    logs, out, good = tmp_path / "logs", tmp_path / "out", tmp_path / "good"
    out.mkdir()
    write_sample_rfcs(good, {77: 50_000})
    with server(logs) as address, stalling_holder(1 * MiB) as stall:
        with socket.create_connection((HOST, int(address.split(":")[1]))) as index:
            index.sendall(f"ADD RFC 77 P2P-CI/1.0\r\nHost: {HOST}\r\nPort: {stall}\r\n"
                          f"Title: Stalled\r\n\r\n".encode())
            assert index.recv(100).startswith(b"P2P-CI/1.0 200 OK")
            getter = Proc(["get", "77", "--server", address, "--dir", str(out)], logs)
            wait_for(lambda: any(p.stat().st_size for p in out.glob(".rfc77.txt.*")),
                     what="half the file in the temporary file")
            getter.stop(signal.SIGKILL)
            assert final_files(out) == []  # half a file never has the final name
        with running(["peer", "--server", address, "--dir", str(good), "--hostname", HOST,
                      "--no-menu"], logs) as holder:
            holder.wait_line("upload server on port")
            wait_for(lambda: listed(address) and all(
                r[2] != stall for r in listed(address)), what="only the good holder listed")
            got = run_cli(["get", "77", "--server", address, "--dir", str(out)])
            assert got.returncode == 0, got.stderr
    assert (out / "rfc77.txt").read_bytes() == sample_text(77, 50_000)


# ----------------------------------------------------------------------------- swarm
def test_seeder_killed_mid_piece_the_download_continues_from_others(tmp_path: Path) -> None:
    logs, out = tmp_path / "logs", tmp_path / "leech"
    data = tmp_path / "seed" / "data.bin"
    data.parent.mkdir()
    data.write_bytes(os.urandom(4 * MiB + 999))
    with server(logs) as address, seeder(data, address, logs, "--piece-size", "64K",
                                         "--max-upload-rate", "2M") as swarm:
        halfseed = logs / "halfseed.log"
        with open(halfseed, "w") as log:
            dying = subprocess.Popen(
                [sys.executable, "-m", "tests.adversarial.halfseed", address.split(":")[1],
                 str(data), str(64 * 1024)], cwd=ROOT, env=cli_env(), stdout=log,
                stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "serving" in halfseed.read_text(), what="the half seeder")
        except AssertionError:
            dying.kill()
            raise
        leech = fetch(swarm, address, out, logs)
        assert dying.wait(timeout=3 * DEADLINE) == -signal.SIGKILL  # it died mid-piece
        leech.finish()
    assert (out / "data.bin").read_bytes() == data.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["data.bin"]  # no part or resume file
    assert verified_pieces(out) == 0


def test_index_server_killed_seeders_and_downloads_carry_on_and_rejoin(tmp_path: Path) -> None:
    """The tracker lives in the index server. When it is killed, a seeder notices and
    reconnects with backoff; a download in progress goes on from the peers it is connected
    to and reconnects too. Once the index server is back on the same port both announce
    again (the seeder its file, the downloader its verified pieces), and the download
    completes."""
    logs, out = tmp_path / "logs", tmp_path / "leech"
    data = tmp_path / "seed" / "data.bin"
    data.parent.mkdir()
    data.write_bytes(os.urandom(3 * MiB + 77))
    port = free_port()
    address = f"{HOST}:{port}"
    args = ["server", "--host", HOST, "--port", str(port)]
    first = Proc(args, logs)
    try:
        first.wait_line("listening on")
        # 256 KiB/s: the download takes 12 s, far longer than the tracker is away
        with running(["share", str(data), "--server", address, *LOCAL, "--piece-size", "64K",
                      "--max-upload-rate", "256K"], logs) as sharer:
            swarm = sharer.wait_line(r"^([0-9a-f]{64}) ").group(1)
            sharer.wait_line("serving")
            leech = fetch(swarm, address, out, logs)
            wait_for(lambda: verified_pieces(out) >= 4, what="a download under way")
            first.stop(signal.SIGKILL)
            leech.wait_line(r"lost the index server .*going on with 1 peer")
            sharer.wait_line("lost the index server")
            backs_off(sharer, 2)
            assert leech.popen.poll() is None  # still downloading
            with running(args, logs) as second:
                second.wait_line("listening on")
                leech.wait_line("back with the index server")
                wait_for(lambda: [f["seeders"] for f in files_of(address)] == [1],
                         what="the seeder announced again")
                leech.finish()
                second.stop()
    finally:
        first.stop()
    assert (out / "data.bin").read_bytes() == data.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["data.bin"]


def test_download_completes_while_the_index_server_stays_away(tmp_path: Path) -> None:
    logs, out = tmp_path / "logs", tmp_path / "leech"
    data = tmp_path / "seed" / "data.bin"
    data.parent.mkdir()
    data.write_bytes(os.urandom(2 * MiB + 5))
    with running(["server", "--host", HOST, "--port", "0"], logs) as index:
        port = index.wait_line(r"listening on \S+:(\d+)").group(1)
        address = f"{HOST}:{port}"
        with seeder(data, address, logs, "--piece-size", "64K", "--max-upload-rate", "1M"
                    ) as swarm:
            leech = fetch(swarm, address, out, logs)
            wait_for(lambda: verified_pieces(out) >= 2, what="a download under way")
            index.stop(signal.SIGKILL)
            done = leech.finish()
    assert "lost the index server" in done
    assert (out / "data.bin").read_bytes() == data.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["data.bin"]


def files_of(address: str) -> list[dict[str, object]]:
    done = run_cli(["files", "--server", address, "--json"])
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, object]] = json.loads(done.stdout)
    return entries
