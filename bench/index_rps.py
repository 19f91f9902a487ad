"""Benchmark 2: index-server request rate and latency under many persistent connections.

A C load generator (bench/loadgen.c, built with the system C compiler) keeps C
connections open and sends LOOKUP for random RFC numbers, one outstanding request per
connection. The same generator then drives a bare asyncio server that answers the same
number of bytes with no logic (bench/bare_server.py), in the same run.

Usage: python bench/index_rps.py [--connections 100 1000] [--seconds 5] [--rfcs 1000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import (  # noqa: E402
    child,
    console,
    cpu_seconds,
    free_port,
    machine,
    p2pshare_cmd,
    result_table,
    wait_port,
)

TITLE = "Benchmark Title Of Fixed Length"


def build_loadgen(tmp: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("a C compiler is needed to build the load generator")
    exe = tmp / "loadgen"
    subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / "loadgen.c")], check=True)
    return exe


def populate(port: int, rfcs: range) -> socket.socket:
    """ADD one record per RFC over one connection that stays open (records live with it)."""
    sock = socket.create_connection(("127.0.0.1", port))
    payload = b"".join(f"ADD RFC {n} P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\nTitle: {TITLE}\r\n\r\n"
                       .encode() for n in rfcs)
    sock.sendall(payload)
    want = sum(len(_reply(n)) for n in rfcs)
    got = 0
    while got < want:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("index server closed during populate")
        got += len(chunk)
    return sock


def _reply(n: int) -> bytes:
    return f"P2P-CI/1.0 200 OK\r\n\r\nRFC {n} {TITLE} h 1\r\n\r\n".encode()


def requests_file(tmp: Path, rfcs: range, count: int = 4096) -> Path:
    rng = random.Random(7)
    path = tmp / "requests"
    path.write_bytes(b"".join(
        f"LOOKUP RFC {rng.choice(rfcs)} P2P-CI/1.0\r\nHost: load\r\nPort: 9\r\n\r\n".encode()
        + b"\0" for _ in range(count)))
    return path


def load(exe: Path, port: int, conns: int, seconds: float, reqs: Path, resplen: int,
         server_pid: int | None = None) -> dict[str, float]:
    """One closed-loop run; with ``server_pid``, adds ``cpu_us``: the server's own CPU time
    per request (which the load on the machine disturbs much less than the rate)."""
    cpu = cpu_seconds(server_pid) if server_pid else 0.0
    out = subprocess.run([str(exe), str(port), str(conns), str(seconds), "100000000",
                          str(resplen), str(reqs)], check=True, capture_output=True, text=True)
    r = {k: float(v) for k, v in (item.split("=") for item in out.stdout.split())}
    if server_pid:
        r["cpu_us"] = (cpu_seconds(server_pid) - cpu) * 1e6 / max(r["requests"], 1)
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rfcs", type=int, default=1000)
    args = parser.parse_args()
    rfcs = range(1000, 1000 + min(args.rfcs, 9000))  # 4-digit numbers: equal reply sizes
    with tempfile.TemporaryDirectory(prefix="p2pshare-bench-") as name:
        tmp = Path(name)
        exe = build_loadgen(tmp)
        reqs = requests_file(tmp, rfcs)
        resplen = len(_reply(rfcs[0]))
        (tmp / "reply").write_bytes(_reply(rfcs[0]))
        console.print(f"[bold]Index server LOOKUP rate[/]: {len(rfcs)} records, "
                      f"{args.seconds:.0f} s per run, {machine()}")
        rows = []
        for conns in args.connections:
            results = {}
            for api in ("streams", "protocol"):
                port = free_port()
                with child([sys.executable, str(HERE / "bare_server.py"), str(port),
                            str(tmp / "reply"), "--api", api]) as server:
                    wait_port(port)
                    results[api] = load(exe, port, conns, args.seconds, reqs, resplen,
                                        server.pid)
            port = free_port()
            with child(p2pshare_cmd("server", "--listen", "127.0.0.1", "--port", str(port))
                       ) as server:
                wait_port(port)
                keep = populate(port, rfcs)
                results["p2pshare"] = load(exe, port, conns, args.seconds, reqs, resplen,
                                           server.pid)
                keep.close()
            for label, key in (("bare asyncio (streams)", "streams"),
                               ("bare asyncio (Protocol)", "protocol"),
                               ("p2pshare server", "p2pshare")):
                r, ours = results[key], results["p2pshare"]
                rows.append([conns, label, r["rps"], r["p50_us"], r["p99_us"], r["cpu_us"],
                             ours["rps"] / r["rps"] if key != "p2pshare" else "",
                             r["cpu_us"] / ours["cpu_us"] if key != "p2pshare" else "",
                             int(r["errors"])])
        result_table("LOOKUP over persistent connections (p2pshare as a ratio of each bare "
                     "server: 1.00 = as fast)",
                     ["conns", "server", "req/s", "p50 µs", "p99 µs", "CPU µs/req",
                      "req/s ratio", "CPU ratio", "errors"], rows)


if __name__ == "__main__":
    main()
