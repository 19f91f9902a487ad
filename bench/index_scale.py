"""Benchmark 3: the index at scale (default 1,000,000 records: 10,000 peers x 100 RFCs).

Measures, on a real ``p2pshare server`` process:
  * resident memory per record (RSS growth / records added);
  * LOOKUP latency with 1,000 records and with the full index (same probe requests, one
    connection, closed loop, on the general path: not answered from the cache), and their
    ratio (target: within 1.5x);
  * time for LIST ALL of the whole index to reach a client, and the server's RSS growth
    while it streams (a streamed LIST should not grow by the size of the listing);
  * time until a peer with 100 records has vanished after its connection drops.

Usage: python bench/index_scale.py [--peers 10000] [--per-peer 100]
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import child, console, free_port, machine, p2pshare_cmd, result_table, wait_port  # noqa: E402
from index_rps import build_loadgen, load  # noqa: E402

TITLE = "Benchmark Title Of Fixed Length"
PROBES = range(900_000, 901_000)  # 1,000 RFCs with one holder each: the LOOKUP probes
BATCH = 2_000  # ADDs pipelined per round trip while populating


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def add_all(sock: socket.socket, records: list[tuple[int, str, int]]) -> None:
    """Pipelined ADDs in batches; waits for every reply (each ends with a blank line)."""
    for i in range(0, len(records), BATCH):
        batch = records[i:i + BATCH]
        sock.sendall(b"".join(
            f"ADD RFC {n} P2P-CI/1.0\r\nHost: {h}\r\nPort: {p}\r\nTitle: {TITLE}\r\n\r\n"
            .encode() for n, h, p in batch))
        want = sum(len(_add_reply(n, h, p)) for n, h, p in batch)
        got = 0
        while got < want:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise SystemExit("server closed while populating")
            got += len(chunk)


def add_spread(port: int, records: list[tuple[int, str, int]]) -> list[socket.socket]:
    """ADD ``records`` within the server's budgets (docs/p2p-ci.md#budgets): the records of
    two hosts (at most 14 host:port pairs) a connection, 400 connections an address
    (127.0.1.x); returns the connections, which must stay open for the records to stay."""
    by_host: dict[str, list[tuple[int, str, int]]] = {}
    for record in records:
        by_host.setdefault(record[1], []).append(record)
    hosts = list(by_host)
    socks = []
    for n in range(0, len(hosts), 2):
        source = f"127.0.{1 + n // 2 // 400 // 254}.{1 + n // 2 // 400 % 254}"
        sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
        socks.append(sock)
        add_all(sock, [r for h in hosts[n:n + 2] for r in by_host[h]])
    return socks


def _add_reply(n: int, h: str, p: int) -> bytes:
    return f"P2P-CI/1.0 200 OK\r\n\r\nRFC {n} {TITLE} {h} {p}\r\n\r\n".encode()


def list_all(port: int) -> tuple[float, int]:
    """Seconds for LIST ALL to arrive completely, and the data lines received."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.perf_counter()
        sock.sendall(b"LIST ALL P2P-CI/1.0\r\nHost: bench\r\nPort: 9\r\n\r\n")
        head, body_tail, lines = b"", b"", 0
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise SystemExit("server closed during LIST")
            if not body_tail:  # still in the head: status line and blank line
                head += chunk
                if b"\r\n\r\n" not in head:
                    continue
                chunk = b"\r\n" + head.split(b"\r\n\r\n", 1)[1]  # keep the blank's CRLF
            lines += chunk.count(b"\r\n")
            body_tail = (body_tail + chunk)[-4:]
            if body_tail == b"\r\n\r\n" or (body_tail.endswith(b"\r\n\r\n")):
                return time.perf_counter() - start, lines - 2


def lookup_status(sock: socket.socket, rfc: int) -> bytes:
    sock.sendall(f"LOOKUP RFC {rfc} P2P-CI/1.0\r\nHost: b\r\nPort: 9\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    status = data.split(b"\r\n")[0]
    if b" 200 " in status:
        while not data.endswith(b"\r\n\r\n") or data.count(b"\r\n\r\n") < 2:
            data += sock.recv(65536)
    return status


def vanish_time(port: int) -> float:
    """Seconds from a 100-record peer's close until its last record is gone."""
    owner = socket.create_connection(("127.0.0.1", port))
    add_all(owner, [(800_000 + i, "leaver", 1) for i in range(100)])
    probe = socket.create_connection(("127.0.0.1", port))
    start = time.perf_counter()
    owner.close()
    deadline = start + 30
    while b"404" not in lookup_status(probe, 800_099):
        if time.perf_counter() > deadline:
            raise SystemExit("records did not vanish within 30 s")
    took = time.perf_counter() - start
    probe.close()
    return took


@dataclass
class Probed:
    """A running ``p2pshare server`` holding the 1,000 probe records (one holder each)."""

    proc: subprocess.Popen[bytes]
    port: int
    feeder: socket.socket  # the connection that owns the probe records
    loadgen: Path
    probes: Path
    probe_len: int

    def lookup_latency(self, seconds: float = 2.0) -> dict[str, float]:
        """LOOKUP of the probes on one connection, closed loop."""
        return load(self.loadgen, self.port, 1, seconds, self.probes, self.probe_len)


@contextmanager
def probed_server(tmp: Path) -> Iterator[Probed]:
    """Build the load generator, start a server, add the probe records."""
    exe = build_loadgen(tmp)
    probes = tmp / "probes"
    # Lower-case header names: a valid LOOKUP that the server's quick path (and its cache
    # of answers) leaves to the general path, so that every probe reads the index itself.
    probes.write_bytes(b"".join(
        f"LOOKUP RFC {n} P2P-CI/1.0\r\nhost: b\r\nport: 9\r\n\r\n".encode() + b"\0"
        for n in PROBES))
    port = free_port()
    with child(p2pshare_cmd("server", "--listen", "127.0.0.1", "--port", str(port))) as srv:
        wait_port(port)
        feeder = socket.create_connection(("127.0.0.1", port))
        add_all(feeder, [(n, "probe", 1) for n in PROBES])
        try:
            yield Probed(srv, port, feeder, exe, probes, len(_add_reply(PROBES[0], "probe", 1)))
        finally:
            feeder.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, default=10_000)
    parser.add_argument("--per-peer", type=int, default=100)
    args = parser.parse_args()
    total = args.peers * args.per_peer
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a connection per two peers
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.peers + 1000)), hard))
    with tempfile.TemporaryDirectory(prefix="p2pshare-bench-") as name:
        tmp = Path(name)
        console.print(f"[bold]Index scale[/]: {len(PROBES):,} + {total:,} records, {machine()}")
        with probed_server(tmp) as server:
            port = server.port
            small = server.lookup_latency()
            before = rss_kib(server.proc.pid)
            start = time.perf_counter()
            records = [(1 + (p * 7 + r * 13) % 20_000, f"peer{p}.example", 1024 + r % 7)
                       for p in range(args.peers) for r in range(args.per_peer)]
            records = list(dict.fromkeys(records))  # distinct (rfc, host, port)
            feeders = add_spread(port, records)
            fill = time.perf_counter() - start
            after = rss_kib(server.proc.pid)
            big = server.lookup_latency()
            listed, lines = list_all(port)
            after_list = rss_kib(server.proc.pid)
            vanish = vanish_time(port)
            for sock in feeders:
                sock.close()
        n = len(records)
        rows = [
            ["records added (distinct)", f"{n:,}"],
            ["ADD rate while filling (pipelined, two hosts a connection)",
             f"{n / fill:,.0f} /s"],
            ["resident memory per record", f"{(after - before) * 1024 / n:,.0f} bytes"],
            [f"LOOKUP p50 at {len(PROBES):,} records", f"{small['p50_us']:,.0f} µs"],
            [f"LOOKUP p50 at {n + len(PROBES):,} records", f"{big['p50_us']:,.0f} µs"],
            ["LOOKUP latency ratio (full / 1k)", f"{big['p50_us'] / small['p50_us']:.2f}x"],
            ["LIST ALL of the whole index", f"{listed:.2f} s, {lines:,} lines"],
            ["server RSS growth during LIST", f"{(after_list - after) / 1024:,.1f} MiB"],
            ["100-record peer gone after its connection drops", f"{vanish * 1000:,.1f} ms"],
        ]
        result_table("index at scale", ["measure", "value"], rows)


if __name__ == "__main__":
    main()
