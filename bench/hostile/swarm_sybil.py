"""A victim's swarm fetch, with and without Sybil tricklers (issue #12's victim bound).

    python bench/hostile/swarm_sybil.py [--runs 5] [--size-mib 16] [--sybils 32]

Loopback only. Each run starts its own tracker (index server) and honest seeder on
127.0.0.1, and times one ``fetch`` by a victim on 127.0.0.1 (resolve, download, whole-file
check, rename). Scenarios: no attack; SYBILS fake members on 127.0.0.2 (the attacker's one
host) that accept every connection and trickle a byte every 200 ms; and the same number
each on its own address 127.0.0.2, .3 … (an attacker with that many hosts, the worst case
for the downloader's host ordering). Prints p50 and p99 (the largest, over a few runs) of
each, their ratio to the unattacked p50, and whether the issue's bound holds: every attacked
fetch within twice the unattacked time plus 5 s. Runs are bounded: each fetch must end
within 120 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from p2pshare.index.server import IndexServer  # noqa: E402
from p2pshare.swarm.session import Fetch, SwarmPeer  # noqa: E402
from p2pshare.swarm.storage import hash_file  # noqa: E402
from p2pshare.swarm.tracker import Tracker  # noqa: E402
from tests.adversarial.sybil import sybil_members  # noqa: E402

HOST = "127.0.0.1"
RUN_LIMIT = 120.0  # seconds one fetch may take before the benchmark gives up


async def one_fetch(folder: Path, size: int, sybil_hosts: list[str], sybils: int) -> float:
    """Seconds the victim's fetch took in a fresh swarm."""
    path = folder / "seed" / "data.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(size))
    manifest = hash_file(path, 256 * 1024)
    server = IndexServer(tracker=Tracker())
    _, port = await server.start(HOST, 0)
    try:
        async with sybil_members(port, manifest, sybil_hosts or [HOST], sybils), \
                SwarmPeer.open(HOST, port, listen=HOST) as seed, \
                SwarmPeer.open(HOST, port, listen=HOST) as victim:
            await seed.share(path, manifest)
            start = time.perf_counter()
            async with asyncio.timeout(RUN_LIMIT):
                job = Fetch(victim, folder / "out")
                result = await job.run(job.prepare(await job.resolve(manifest.id)))
            took = time.perf_counter() - start
        assert result.read_bytes() == path.read_bytes()
        return took
    finally:
        await server.aclose()


def measure(runs: int, size: int, hosts: list[str], sybils: int) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(asyncio.run(one_fetch(Path(tmp), size, hosts, sybils)))
    return times


def p99(values: list[float]) -> float:
    return max(values) if len(values) < 100 else statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=16)
    parser.add_argument("--sybils", type=int, default=32)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    scenarios = [("no attack", [], 0),
                 (f"{args.sybils} tricklers on 127.0.0.2", ["127.0.0.2"], args.sybils),
                 (f"{args.sybils} tricklers on {args.sybils} addresses",
                  [f"127.0.0.{2 + i}" for i in range(args.sybils)], args.sybils)]
    base = 0.0
    print(f"victim fetch of {args.size_mib} MiB, {args.runs} runs each, loopback")
    print(f"{'scenario':40} {'p50 s':>8} {'p99 s':>8} {'p50/base':>9} {'p99/base':>9}  bound")
    for name, hosts, count in scenarios:
        times = measure(args.runs, size, hosts, count)
        mid, worst = statistics.median(times), p99(times)
        base = base or mid
        bound = "" if not count else ("met" if worst <= 2 * base + 5 else "MISSED")
        print(f"{name:40} {mid:8.3f} {worst:8.3f} {mid / base:9.2f} {worst / base:9.2f}  "
              f"{bound}")
        print(f"{'':40} runs: {', '.join(f'{t:.3f}' for t in times)}")


if __name__ == "__main__":
    main()
