"""Floods of the index server (issue #12): stalled LIST ALL readers, and HAVE reports.

Measures the code on PYTHONPATH (so that two trees can be compared, e.g. one from
``git archive``):
  * the resident memory of an index server process holding RECORDS records, before and
    while READERS clients (from 127.0.0.2, a 4 KiB receive buffer each) have sent LIST ALL
    and read nothing;
  * the tracker's cost of one HAVE report (the same report again and again, as a flood
    sends it) in a swarm of 15,000 pieces whose members hold staggered pieces (one
    availability level each), for 10, 200 and 1,000 members.

Usage: python bench/index_floods.py [--records 200000] [--readers 50]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

SERVE = """
import asyncio
from p2pshare.index import store
from p2pshare.index.server import IndexServer
roomy = getattr(store, "IndexBudget", None)  # a tree without budgets has no such class
index = store.MemoryIndex(roomy(per_connection=10**7, per_source=10**7)) if roomy else \\
    store.MemoryIndex()
for n in range({records}):
    index.add(f"o{{n // 10000}}", 1 + n % 999_999, "A title of a filler record",
              f"h{{n // 10000}}", 1)
async def main():
    server = IndexServer(index)
    _, port = await server.start("127.0.0.1", 0)
    print(f"port {{port}}", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+)", status)
    assert found is not None
    return int(found.group(1)) / 1024


def started(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False


def stalled_lists(records: int, readers: int) -> None:
    # run from / so that the p2pshare imported is the one on PYTHONPATH, not the cwd's
    proc = subprocess.Popen([sys.executable, "-c", SERVE.format(records=records)], cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        found = re.search(r"port (\d+)", proc.stdout.readline())
        assert found is not None
        port = int(found.group(1))
        time.sleep(0.5)  # a measurement pause: the server settles after filling its index
        before = rss_mib(proc.pid)
        socks = []
        for _ in range(readers):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind(("127.0.0.2", 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"LIST ALL P2P-CI/1.0\r\nHost: a\r\nPort: 1\r\n\r\n")
            socks.append(sock)
        deadline = time.monotonic() + 20
        while not all(started(s) for s in socks) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the readers' sockets
        time.sleep(1)  # a measurement pause: the stalled answers settle
        count = sum(started(s) for s in socks)
        after = rss_mib(proc.pid)
        print(f"{records:,} records: RSS {before:.1f} MiB; with {count} of {readers} LIST ALL "
              f"stalled {after:.1f} MiB (+{after - before:.1f} MiB)")
    finally:
        proc.terminate()
        proc.wait()


def have_cost(members: int) -> float:
    """Microseconds per HAVE report at a tracker with ``members`` in one swarm."""
    from p2pshare.protocol import swarm as sp
    from p2pshare.swarm.manifest import Manifest
    from p2pshare.swarm.tracker import Tracker

    pieces = 15_000
    m = Manifest("big.bin", pieces * 16384, 16384, tuple(
        hashlib.sha256(str(i).encode()).digest() for i in range(pieces)))
    tracker = Tracker()
    owners = [object() for _ in range(members)]
    for n, owner in enumerate(owners):
        tracker.answer(owner, *sp.to_request(sp.Announce(m.id, "x", n + 1, m.to_bytes())))
        tracker.answer(owner, *sp.to_request(sp.Have(m.id, (1 << (pieces - n)) - 1)))
    report = sp.to_request(sp.Have(m.id, (1 << pieces) - 1))
    start = time.perf_counter()
    for _ in range(2000):
        tracker.answer(owners[0], *report)
    return (time.perf_counter() - start) / 2000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--readers", type=int, default=50)
    args = parser.parse_args()
    stalled_lists(args.records, args.readers)
    for members in (10, 200, 1000):
        print(f"HAVE at a swarm of {members:,} members: {have_cost(members):,.0f} µs each")


if __name__ == "__main__":
    main()
