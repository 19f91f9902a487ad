#!/usr/bin/env python3
"""The victim's view of each attack: LOOKUP and get times on 127.0.0.1, with and without.

    python bench/hostile/run.py [--lookups 100] [--gets 10] [--attacks idle hog ...]

A real index server and a real peer (``p2pshare server``, ``p2pshare peer``) run as
processes; each attack (``attack.py``, its own process, from 127.0.0.2 and up) is put in
place, then the victim measures: LOOKUP (a fresh connection and one LOOKUP, as a one-shot
``p2pshare lookup`` does) and get (a GET of a 256 KiB RFC from the peer). The table gives
p50 and p99 of each, their ratio to the same figure with no attack, measured in the same
run, and whether the issue's bound holds: every attacked time within twice the unattacked
one plus 5 s, and no failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import child, console, free_port, machine, result_table, wait_port  # noqa: E402

from p2pshare.peer.client import IndexClient, fetch_from  # noqa: E402

ATTACKS = ["idle", "hog", "pipeline", "records", "stall"]
SAMPLE_DEADLINE = 60.0  # seconds one victim action may take; a failure counts as this long


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def one_lookup(port: int) -> float:
    start = time.perf_counter()
    client = IndexClient("127.0.0.1", port, "127.0.0.1", 1)
    try:
        await client.connect()
        reply = await client.lookup(1)
        if reply.status != 200:
            raise RuntimeError(f"LOOKUP answered {reply.status}")
    finally:
        await client.aclose()
    return time.perf_counter() - start


async def one_get(upload: int, folder: Path) -> float:
    start = time.perf_counter()
    await fetch_from(folder, 1, "127.0.0.1", upload)
    return time.perf_counter() - start


async def sample(action: object, count: int) -> tuple[list[float], int]:
    times: list[float] = []
    failed = 0
    for _ in range(count):
        try:
            async with asyncio.timeout(SAMPLE_DEADLINE):
                times.append(await action())  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 (a failed victim action is the measurement)
            failed += 1
            times.append(SAMPLE_DEADLINE)
            console.print(f"[dim]  failed: {type(exc).__name__}: {exc}[/dim]")
    return times, failed


def start(stack: ExitStack, args: list[str], log: Path) -> subprocess.Popen[str]:
    """``python ARGS`` as a child that ends with ``stack``; stderr to ``log``."""
    out = stack.enter_context(open(log, "w"))
    return stack.enter_context(child([sys.executable, *args], stdout=subprocess.PIPE,
                                      stderr=out, text=True, cwd=HERE.parent.parent))


def upload_port(peer: subprocess.Popen[str]) -> int:
    """The port the peer's upload server got (it prints it once listening)."""
    assert peer.stdout is not None
    for line in peer.stdout:
        if m := re.search(r"upload server on port (\d+)", line):
            return int(m.group(1))
    raise RuntimeError("the peer exited before its upload server listened")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookups", type=int, default=100)
    parser.add_argument("--gets", type=int, default=10)
    parser.add_argument("--attacks", nargs="*", default=ATTACKS, choices=ATTACKS)
    args = parser.parse_args()
    console.print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shared, got = work / "shared", work / "got"
        shared.mkdir()
        got.mkdir()
        (shared / "rfc1.txt").write_bytes(os.urandom(256 * 1024))
        (shared / "rfc2.txt").write_bytes(os.urandom(64 * 1024 * 1024))
        index = free_port()
        with ExitStack() as stack:
            start(stack, ["-m", "p2pshare", "server", "--listen", "127.0.0.1", "--port",
                          str(index)], work / "server.log")
            wait_port(index)  # a peer started before its server quits
            peer = start(stack, ["-m", "p2pshare", "peer", "--server", f"127.0.0.1:{index}",
                                 "--dir", str(shared), "--upload-port", "0", "--hostname",
                                 "127.0.0.1", "--no-menu"], work / "peer.log")
            upload = upload_port(peer)
            rows = run_attacks(args, index, upload, work, got)
    result_table("victim (127.0.0.1) under attack (127.0.0.2+)",
                 ["attack", "LOOKUP p50 / p99", "ratio", "get p50 / p99", "ratio", "failed",
                  "bound met"], rows)
    return 0


def run_attacks(args: argparse.Namespace, index: int, upload: int, work: Path,
                got: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    base: tuple[list[float], list[float]] | None = None
    for kind in ["none", *args.attacks]:
        with ExitStack() as stack:
            if kind != "none":
                attacker = start(stack, [str(HERE / "attack.py"), kind, "--index", str(index),
                                         "--upload", str(upload), "--seconds", "300"],
                                 work / f"attack-{kind}.log")
                assert attacker.stdout is not None
                line = attacker.stdout.readline()  # "ready ..." (or EOF if it died)
                console.print(f"[dim]{kind}: {line.strip() or 'attacker exited'}[/dim]")
            lookups, bad_l = asyncio.run(sample(lambda: one_lookup(index), args.lookups))
            gets, bad_g = asyncio.run(sample(lambda: one_get(upload, got), args.gets))
        if base is None:
            base = (lookups, gets)
        rows.append(row(kind, lookups, gets, base, bad_l + bad_g))
    return rows


def row(kind: str, lookups: list[float], gets: list[float],
        base: tuple[list[float], list[float]], failed: int) -> list[str]:
    cells = [kind]
    met = failed == 0
    for times, ref in ((lookups, base[0]), (gets, base[1])):
        p50, top = statistics.median(times), p99(times)
        cells += [f"{p50 * 1000:.1f} / {top * 1000:.1f} ms",
                  f"{p50 / statistics.median(ref):.2f}x / {top / p99(ref):.2f}x"]
        met = met and top <= 2 * p99(ref) + 5.0
    return [*cells, str(failed), "yes" if met else "NO"]


if __name__ == "__main__":
    sys.exit(main())
