"""Starting a swarm peer before its index server, and a leech that uploads nothing: real
``p2pshare`` processes on loopback."""

from __future__ import annotations

import os
from pathlib import Path

from ..aio import free_port
from ..helpers import wait_for
from .procs import LOCAL, fetch, files, running, seeder, server, verified_pieces

MiB = 1024 * 1024


def test_share_started_before_the_index_server(tmp_path: Path) -> None:
    """share retries the first connection with backoff, saying so, and registers its file
    once the server comes up on that port."""
    logs, data = tmp_path / "logs", tmp_path / "data.bin"
    data.write_bytes(os.urandom(100_000))
    address = f"127.0.0.1:{free_port()}"
    with running(["share", str(data), "--server", address, *LOCAL], logs) as sharer:
        sharer.wait_line(rf"index server at {address} not reachable .*; retry in [\d.]+ s")
        port = address.split(":")[1]
        with running(["server", "--host", "127.0.0.1", "--port", port], logs) as index:
            index.wait_line("listening on")
            wait_for(lambda: [f["name"] for f in files(address)] == ["data.bin"],
                     what="the file registered once the server is up")
        sharer.wait_line("serving 1 swarm")


def test_a_leech_that_does_not_upload_is_never_listed(tmp_path: Path) -> None:
    """fetch --no-upload (and a download rate limit) completes, starts no piece server,
    and the tracker never lists it: no peer is ever told to connect to it."""
    logs, out, data = tmp_path / "logs", tmp_path / "out", tmp_path / "seed" / "data.bin"
    data.parent.mkdir()
    data.write_bytes(os.urandom(3 * MiB))
    with server(logs) as address, \
            seeder(data, address, logs, "--piece-size", "64K", "--max-upload-rate", "1M"
                   ) as swarm:
        leech = fetch(swarm, address, out, logs, "--no-upload", "--max-download-rate", "2M")
        wait_for(lambda: verified_pieces(out) >= 4 or leech.popen.poll() is not None,
                 what="a download in progress")
        [entry] = files(address)
        assert (entry["seeders"], entry["leechers"]) == (1, 0)
        output = leech.finish()
    assert (out / "data.bin").read_bytes() == data.read_bytes()
    assert "piece server listening" not in output


def test_seed_and_no_upload_exclude_each_other(tmp_path: Path) -> None:
    leech = fetch("x", "127.0.0.1:1", tmp_path, tmp_path / "logs", "--seed", "--no-upload")
    leech.popen.wait(timeout=30)
    assert leech.popen.returncode == 2 and "exclude each other" in leech.output
