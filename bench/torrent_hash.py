#!/usr/bin/env python3
"""Hashing speed of ``p2pshare torrent create`` next to libtorrent's, on one file.

    python bench/torrent_hash.py FILE [--rounds N]

Strategy: both make a torrent of FILE (default piece size) in this process, v1, v2 and
hybrid, each ``--rounds`` times; the best wall time and the CPU time of that round are
reported in MiB/s, so that a busy machine (other processes taking the cores) shows as
CPU time well under wall time. Read the file once beforehand so that both read it from
the page cache. libtorrent (the wheel) hashes in its own threads; p2pshare reads in the
calling thread and hashes in two (bt/create.py).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

from p2pshare.bt.create import Kind, make_torrent


def timed(work: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of the process in that round)."""
    best = (float("inf"), 0.0)
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def libtorrent_maker(path: Path, kind: Kind) -> Callable[[], object]:
    import libtorrent as lt  # the wheel: only this benchmark and tests/bt need it

    flags = {Kind.V1: lt.create_torrent.v1_only, Kind.V2: lt.create_torrent.v2_only}
    def make() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            creator = lt.create_torrent(lt.list_files(str(path)), 0, flags=flags.get(kind, 0))
            lt.set_piece_hashes(creator, str(path.parent))
        return creator.generate()
    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = args.file.absolute()
    mib = path.stat().st_size / 2**20
    path.read_bytes()
    print("| kind | p2pshare MiB/s (CPU s) | libtorrent MiB/s (CPU s) |\n|---|---:|---:|")
    for kind in Kind:
        ours = timed(partial(make_torrent, path, kind=kind), args.rounds)
        theirs = timed(libtorrent_maker(path, kind), args.rounds)
        print(f"| {kind.value} | {mib / ours[0]:.0f} ({ours[1]:.2f}) "
              f"| {mib / theirs[0]:.0f} ({theirs[1]:.2f}) |")


if __name__ == "__main__":
    main()
