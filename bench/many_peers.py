"""Benchmark 4: many simultaneous peers held open on one index server (default 10,000).

Each peer is a real TCP connection that ADDs one RFC and stays connected. Before and while
they are all connected, a closed-loop client (bench/loadgen.c) measures LOOKUP latency on
one connection; the ratio shows whether the server still answers within its normal
latency. Then every peer disconnects at once and we time until the index is empty.
The benchmark raises its own open-file limit; the server raises its own as well.

Usage: python bench/many_peers.py [--peers 10000]
"""

from __future__ import annotations

import argparse
import resource
import selectors
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import console, machine, result_table  # noqa: E402
from index_scale import PROBES, list_all, probed_server, rss_kib  # noqa: E402


def open_peers(port: int, count: int, first: int = 0) -> list[socket.socket]:
    """``count`` connections, each ADDing one RFC; returns once every reply arrived. They
    come from 127.0.0.2 upwards, 1,000 an address: the index server admits at most
    MAX_CONNECTIONS_PER_SOURCE connections from one address. Peer i is ``p<i>``, i from
    ``first`` (several servers on one shared store: each its own peers)."""
    peers = []
    for i in range(first, first + count):
        source = f"127.0.{2 + i // 1000 // 254}.{2 + i // 1000 % 254}"
        sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
        sock.sendall(f"ADD RFC {1 + i % 50_000} P2P-CI/1.0\r\nHost: p{i}\r\nPort: 1\r\n"
                     f"Title: T\r\n\r\n".encode())
        peers.append(sock)
    sel = selectors.DefaultSelector()
    for sock in peers:
        sel.register(sock, selectors.EVENT_READ)
    pending = {sock.fileno(): b"" for sock in peers}
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data = pending[sock.fileno()] + sock.recv(4096)
            if data.count(b"\r\n\r\n") >= 2:
                del pending[sock.fileno()]
                sel.unregister(sock)
            else:
                pending[sock.fileno()] = data
    if pending:
        raise SystemExit(f"{len(pending)} peers got no ADD reply")
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, default=10_000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.peers + 1000), hard))
    with tempfile.TemporaryDirectory(prefix="p2pshare-bench-") as name:
        tmp = Path(name)
        console.print(f"[bold]Many peers[/]: {args.peers:,} connections, {machine()}")
        with probed_server(tmp) as server:
            port = server.port
            quiet = server.lookup_latency()
            rss0 = rss_kib(server.proc.pid)
            start = time.perf_counter()
            peers = open_peers(port, args.peers)
            opened = time.perf_counter() - start
            busy = server.lookup_latency()
            rss1 = rss_kib(server.proc.pid)
            _, lines = list_all(port)
            start = time.perf_counter()
            for sock in peers:
                sock.close()
            deadline = time.monotonic() + 60
            while list_all(port)[1] > len(PROBES) and time.monotonic() < deadline:
                pass
            drained = time.perf_counter() - start
        rows = [
            ["peers connected and registered", f"{len(peers):,} in {opened:.1f} s"],
            ["records listed while all connected", f"{lines:,}"],
            ["LOOKUP p50 / p99, no other peers", f"{quiet['p50_us']:,.0f} / "
             f"{quiet['p99_us']:,.0f} µs"],
            [f"LOOKUP p50 / p99, {len(peers):,} peers connected", f"{busy['p50_us']:,.0f} / "
             f"{busy['p99_us']:,.0f} µs"],
            ["p50 ratio (connected / quiet)", f"{busy['p50_us'] / quiet['p50_us']:.2f}x"],
            ["server memory per connected peer", f"{(rss1 - rss0) * 1024 / len(peers):,.0f} B"],
            ["all peers gone after they disconnect", f"{drained:.2f} s"],
        ]
        result_table("many peers on one index server", ["measure", "value"], rows)


if __name__ == "__main__":
    main()
