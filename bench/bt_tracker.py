#!/usr/bin/env python3
"""The BitTorrent tracker's costs: table announces a second, memory a record, and UDP
announces a second on loopback (one client, one at a time, each a connect and an announce).

    python bench/bt_tracker.py [--peers N] [--udp N]

Strategy: the table (``bt.tracker.SwarmTable``) is driven directly with ``--peers``
announces, each from its own address (the worst case for memory: every address has its
own bookkeeping) into 1,000 swarms, with no rate limit, and measured with ``tracemalloc``
and ``time.perf_counter``. Then a real ``UdpServer`` on 127.0.0.1 answers ``--udp``
announces of the announce client (``bt.announce``), in one process: a round-trip figure
for the whole UDP path, not the tracker's throughput under many clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import tracemalloc

from p2pshare.bt.announce import announce
from p2pshare.bt.tracker import SwarmTable, TableLimits
from p2pshare.bt.tracker_server import BtTracker
from p2pshare.net.udp import UdpServer
from p2pshare.protocol.bt_tracker import AnnounceRequest

NO_RATE = TableLimits(burst=1e12, rate=1e9, per_source=10**6, max_peers=10**7)


def table(peers: int) -> tuple[float, float]:
    """(announces a second, bytes a record) for ``peers`` new records: timed in one pass,
    weighed in another (``tracemalloc`` slows what it watches)."""
    requests = [(AnnounceRequest((i % 1000).to_bytes(20, "big"), os.urandom(20),
                                 1000 + i % 60000, left=5),
                 f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(peers)]
    start = time.perf_counter()
    fill(SwarmTable(NO_RATE), requests)
    spent = time.perf_counter() - start
    tracemalloc.start()
    kept = SwarmTable(NO_RATE)
    fill(kept, requests)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peers / spent, held / peers


def fill(t: SwarmTable, requests: list[tuple[AnnounceRequest, str]]) -> None:
    for request, source in requests:
        t.announce(request, source, 0.0)


async def udp(count: int) -> float:
    """UDP announces a second through the client and the server, one at a time."""
    server = UdpServer(BtTracker(SwarmTable(NO_RATE)).datagram, burst=1e12, rate=1e9)
    _, port = await server.start("127.0.0.1", 0)
    try:
        start = time.perf_counter()
        for n in range(count):
            await announce(f"udp://127.0.0.1:{port}", bytes(20), os.urandom(20),
                           1000 + n % 60000, "started", 0, 0, 5, timeout=5)
        return count / (time.perf_counter() - start)
    finally:
        await server.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--peers", type=int, default=100_000)
    parser.add_argument("--udp", type=int, default=2_000)
    args = parser.parse_args()
    rate, size = table(args.peers)
    print(f"table: {rate:,.0f} announces/s, {size:,.0f} bytes a record "
          f"({args.peers:,} records, each from its own address)")
    print(f"udp: {asyncio.run(udp(args.udp)):,.0f} announces/s "
          f"(connect + announce each, one client, loopback)")


if __name__ == "__main__":
    main()
