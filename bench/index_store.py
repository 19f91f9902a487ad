"""Benchmark 7: the P2P-CI index on the Redis store against the in-memory store (issue 16).

Loopback only. A private redis-server (no persistence) is started; then, in turn, one
index server in memory, one on the Redis store, and three on the same Redis store
(``p2pshare server --store redis://...``). Each holds 10,000 live peers (``--peers``):
real TCP connections that each ADDed one record and stay connected (bench/many_peers.py),
spread over the nodes. Then the C load generator (bench/loadgen.c) drives, closed-loop,
``--clients`` connections spread over the nodes:

* LOOKUP of one of 100 RFCs with one holder each (the same reply size every time);
* ADD: each connection re-ADDs its own record (a peer only it owns), which moves the
  record to the front: the full ADD path (owner check, budgets, the global order).

Rates are summed over the nodes; p99 is the highest of the nodes' p99s. Ratios to the
in-memory store of the same run are printed. Every load loop is bounded in time
(``--seconds``) and in requests.

Usage: python bench/index_store.py [--peers 10000] [--clients 64] [--seconds 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import (  # noqa: E402
    build_c,
    child,
    console,
    free_port,
    load_average,
    machine,
    p2pshare_cmd,
    result_table,
    wait_port,
)
from index_rps import TITLE, _reply, load, populate, requests_file  # noqa: E402
from many_peers import open_peers  # noqa: E402

RFCS = range(60000, 60100)  # LOOKUP targets: one holder each, none of the live peers
# (they ADD RFCs 1 to 50,000), and 5-digit numbers: the same reply size for each
SETUPS = (("memory", 1), ("redis", 1), ("redis", 3))


@contextmanager
def redis(tmp: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (apt-get install -y redis-server)")
    port = free_port()
    with child([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL):
        wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def nodes(store: str | None, count: int) -> Iterator[list[int]]:
    """``count`` index servers (on ``store``, or in memory); yields their ports."""
    ports = [free_port() for _ in range(count)]
    with ExitStack() as stack:
        for port in ports:
            extra = ["--store", store] if store else []
            stack.enter_context(child(p2pshare_cmd(
                "server", "--listen", "127.0.0.1", "--port", str(port), *extra)))
        for port in ports:
            wait_port(port)
        yield ports


def add_file(tmp: Path, node: int, clients: int) -> tuple[Path, int]:
    """One ADD per load connection of ``node``, each of its own peer; the reply's length."""
    path = tmp / f"adds{node}"
    path.write_bytes(b"".join(
        f"ADD RFC 2000 P2P-CI/1.0\r\nHost: L{i:05d}\r\nPort: 1\r\nTitle: {TITLE}\r\n\r\n"
        .encode() + b"\0" for i in range(node * clients, (node + 1) * clients)))
    reply = f"P2P-CI/1.0 200 OK\r\n\r\nRFC 2000 {TITLE} L00000 1\r\n\r\n".encode()
    return path, len(reply)


def drive(exe: Path, ports: list[int], clients: int, seconds: float, reqs: list[Path],
          resplen: int, perconn: bool = False) -> dict[str, float]:
    """The load generator on every node at once, ``clients`` connections in all; node n
    sends the requests of ``reqs[n]``."""
    shares = _shares(clients, len(ports))
    with ThreadPoolExecutor(len(ports)) as pool:
        runs = list(pool.map(lambda n: _one(exe, ports[n], shares[n], seconds, reqs[n],
                                            resplen, perconn), range(len(ports))))
    return {"rps": sum(r["rps"] for r in runs), "p50_us": max(r["p50_us"] for r in runs),
            "p99_us": max(r["p99_us"] for r in runs),
            "errors": sum(r["errors"] for r in runs)}


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (n < total % parts) for n in range(parts)]


def _one(exe: Path, port: int, conns: int, seconds: float, reqs: Path, resplen: int,
         perconn: bool) -> dict[str, float]:
    if not perconn:
        return load(exe, port, conns, seconds, reqs, resplen)
    out = subprocess.run([str(exe), str(port), str(conns), str(seconds), "100000000",
                          str(resplen), str(reqs), "perconn"], check=True,
                         capture_output=True, text=True, timeout=seconds + 120)
    return {k: float(v) for k, v in (item.split("=") for item in out.stdout.split())}


def measure(exe: Path, tmp: Path, url: str, kind: str, count: int,
            args: argparse.Namespace) -> dict[str, dict[str, float]]:
    lookups = requests_file(tmp, RFCS)
    adds = [add_file(tmp, n, args.clients) for n in range(count)]
    with nodes(url if kind == "redis" else None, count) as ports:
        keep = populate(ports[0], RFCS)
        shares = _shares(args.peers, count)
        peers = [sock for n, port in enumerate(ports)
                 for sock in open_peers(port, shares[n], first=sum(shares[:n]))]
        console.print(f"{kind} x{count}: {len(peers):,} live peers (load {load_average():.1f})")
        found = {"LOOKUP": drive(exe, ports, args.clients, args.seconds, [lookups] * count,
                                 len(_reply(RFCS[0]))),
                 "ADD": drive(exe, ports, args.clients, args.seconds,
                              [path for path, _ in adds], adds[0][1], True)}
        for sock in [keep, *peers]:
            sock.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, default=10_000, help="live peers (connections)")
    parser.add_argument("--clients", type=int, default=64, help="load connections in all")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.peers + 1000), hard))
    with tempfile.TemporaryDirectory(prefix="p2pshare-bench-") as name:
        tmp = Path(name)
        exe = build_c(HERE / "loadgen.c", tmp)
        console.print(f"[bold]Index store[/]: {args.peers:,} live peers, {args.clients} load "
                      f"connections, {args.seconds:.0f} s per run, {machine()}")
        with redis(tmp) as url:
            results = {(kind, count): measure(exe, tmp, url, kind, count, args)
                       for kind, count in SETUPS}
    base = results["memory", 1]
    rows = []
    for op in ("LOOKUP", "ADD"):
        for (kind, count), found in results.items():
            r, m = found[op], base[op]
            rows.append([op, f"{kind}, {count} node{'s' if count > 1 else ''}", r["rps"],
                         r["p50_us"], r["p99_us"], r["rps"] / m["rps"],
                         r["p99_us"] / m["p99_us"], int(r["errors"])])
    result_table("P2P-CI index: Redis store vs in memory (ratios to memory, 1 node)",
                 ["op", "store", "req/s", "p50 µs", "p99 µs", "req/s ratio", "p99 ratio",
                  "errors"], rows)


if __name__ == "__main__":
    main()
