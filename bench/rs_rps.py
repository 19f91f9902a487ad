"""Benchmark 5: the P2P-DI registration server's request rate, one connection per message.

Against a real ``p2pshare rs`` process: N peers register (a C helper, bench/oneshot.c,
many short connections at once, learns every cookie), then Register (again, with the
cookie), KeepAlive and PQuery are each driven closed-loop by C concurrent clients, every
request on its own connection (connect, send, read until the server closes), each peer
with its own cookie. In the same run a bare asyncio server that answers one request per
connection with the same bytes (bench/bare_server.py --oneshot: "bare streams" on asyncio
streams like the RS, "bare Protocol" on the Protocol API) is driven by the same client, and
the ratios are printed.

"PQuery cost must not grow with inactive peers": a second RS holds the same N active peers
plus ``--inactive`` x N peers that registered and then sent Leave; PQuery is measured on
both, alternately, and the latency ratio printed (1.0 is the goal). The active count, and
so the reply size, is the same on both.

The machine may be shared, and other work there changes the wall-clock figures from one
run to the next: every row shows the 1-minute load average, figures are medians of
``--runs`` runs with the servers measured in turn within each run, and every row also shows
the server's own CPU time per request (user + system, from /proc), which the load changes
much less: 1,000,000 / that is the rate one free core would sustain.

Usage: python bench/rs_rps.py [--peers 1000 10000] [--clients 32] [--seconds 3] [--runs 3]
                              [--inactive 10] [--messages]
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import (  # noqa: E402
    build_c,
    child,
    console,
    cpu_seconds,
    free_port,
    load_average,
    machine,
    p2pshare_cmd,
    result_table,
    wait_port,
)

OK = "P2P-DI/1.0 200 OK\r\n"
KINDS = ("Register", "KeepAlive", "PQuery")
MAX_EXCHANGES = 10_000_000  # a bound on every load loop besides its duration
SETUP_SECONDS = 600.0  # registering or leaving a whole population takes at most this


# ------------------------------------------------------------------------------ requests
def host(i: int) -> str:
    """Peer i's host name: all the same length, so every PQuery reply has the same size."""
    return f"peer{i:07d}"


def port(i: int) -> int:
    return 20000 + i % 40000  # five digits


def register(i: int, cookie: int | None = None) -> bytes:
    line = f"Cookie: {cookie}\r\n" if cookie is not None else ""
    return (f"REGISTER PEER P2P-DI/1.0\r\nHost: {host(i)}\r\nPort: {port(i)}\r\n{line}"
            f"OS: bench\r\n\r\n").encode()


def with_cookie(method: str, target: str, i: int, cookie: int) -> bytes:
    return (f"{method} {target} P2P-DI/1.0\r\nHost: {host(i)}\r\nCookie: {cookie}\r\n"
            f"OS: bench\r\n\r\n").encode()


def request(kind: str, i: int, cookie: int) -> bytes:
    if kind == "Register":
        return register(i, cookie)
    if kind == "KeepAlive":
        return with_cookie("KEEPALIVE", "PEER", i, cookie)
    if kind == "PQuery":
        return with_cookie("PQUERY", "ALL", i, cookie)
    return with_cookie("LEAVE", "PEER", i, cookie)


def requests_file(path: Path, requests: Sequence[bytes]) -> Path:
    path.write_bytes(b"".join(r + b"\0" for r in requests))
    return path


# ------------------------------------------------------------------------------ the client
@dataclass(frozen=True)
class Server:
    port: int
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        return cpu_seconds(self.pid)


@dataclass(frozen=True)
class Load:
    rps: float
    p50_us: float
    p99_us: float
    errors: int
    reply_bytes: float
    cpu_us: float  # the server's CPU time per request
    load: float  # 1-minute load average when the run started


def oneshot(exe: Path, server: Server, clients: int, seconds: float, maxreq: int, reqs: Path,
            out: Path | None = None) -> Load:
    """One closed-loop run of the C client, one connection per request."""
    load = load_average()
    args = [str(exe), str(server.port), str(clients), str(seconds), str(maxreq), OK, str(reqs)]
    if out is not None:
        args.append(str(out))
    cpu = server.cpu_seconds()
    done = subprocess.run(args, check=True, capture_output=True, text=True,
                          timeout=seconds + 60)
    cpu = server.cpu_seconds() - cpu
    r = {k: float(v) for k, v in (item.split("=") for item in done.stdout.split())}
    return Load(r["rps"], r["p50_us"], r["p99_us"], int(r["errors"]), r["reply_bytes"],
                cpu * 1e6 / max(r["requests"], 1), load)


def exchange(server: Server, data: bytes) -> bytes:
    """One request on its own connection; the whole reply, read until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


_COOKIE = re.compile(rb"\r\nCookie: (\d+)\r\n")


def populate(exe: Path, server: Server, first: int, count: int, tmp: Path, leave: bool = False
             ) -> dict[int, int]:
    """Register peers first .. first+count-1 (then make them Leave); their cookies."""
    reqs = requests_file(tmp / "register", [register(i) for i in range(first, first + count)])
    out = tmp / "registered"
    r = oneshot(exe, server, 64, SETUP_SECONDS, count, reqs, out)
    cookies: dict[int, int] = {}
    for record in out.read_bytes().split(b"\0")[:-1]:
        index, _, reply = record.partition(b" ")
        m = _COOKIE.search(reply)
        if m is not None:
            cookies[first + int(index)] = int(m.group(1))
    if len(cookies) != count:
        raise SystemExit(f"only {len(cookies)} of {count} peers registered ({r.errors} errors)")
    if leave:
        reqs = requests_file(tmp / "leave", [request("Leave", i, c) for i, c in cookies.items()])
        r = oneshot(exe, server, 64, SETUP_SECONDS, count, reqs)
        if r.errors:
            raise SystemExit(f"{r.errors} of {count} Leave requests failed")
    return cookies


# ------------------------------------------------------------------------------ servers
@contextmanager
def rs(messages: bool) -> Iterator[Server]:
    """A ``p2pshare rs`` on a free loopback port (its message trace to /dev/null)."""
    port_ = free_port()
    args = ["rs", "--listen", "127.0.0.1", "--port", str(port_)]
    with child(p2pshare_cmd(*args, *([] if messages else ["--no-messages"])),
               stdout=subprocess.DEVNULL) as proc:
        wait_port(port_)
        yield Server(port_, proc.pid)


@contextmanager
def bare(reply: Path, api: str) -> Iterator[Server]:
    port_ = free_port()
    with child([sys.executable, str(HERE / "bare_server.py"), str(port_), str(reply),
                "--api", api, "--oneshot"]) as proc:
        wait_port(port_)
        yield Server(port_, proc.pid)


# ------------------------------------------------------------------------------ one size
def median_load(loads: Sequence[Load]) -> Load:
    def med(attr: str) -> float:
        return float(statistics.median(getattr(x, attr) for x in loads))

    return Load(med("rps"), med("p50_us"), med("p99_us"), sum(x.errors for x in loads),
                med("reply_bytes"), med("cpu_us"), med("load"))


def bench_size(exe: Path, n: int, args: argparse.Namespace, tmp: Path
               ) -> tuple[list[list[object]], list[list[object]]]:
    """The rows for N registered peers: per message kind, and active vs inactive."""
    with ExitStack() as stack:
        base = stack.enter_context(rs(args.messages))
        console.print(f"N={n:,}: registering {n:,} peers")
        cookies = populate(exe, base, 0, n, tmp)
        # the reference answers with the bytes the RS sends the most usual peer (cookies
        # have 19 digits 9 times in 10)
        digits = statistics.mode(len(str(c)) for c in cookies.values())
        usual = next(i for i, c in cookies.items() if len(str(c)) == digits)
        files, servers = {}, {}
        for kind in KINDS:
            files[kind] = requests_file(
                tmp / f"req-{kind}", [request(kind, i, c) for i, c in cookies.items()])
            reply = tmp / f"reply-{kind}"
            reply.write_bytes(exchange(base, request(kind, usual, cookies[usual])))
            if not reply.read_bytes().startswith(OK.encode()):
                raise SystemExit(f"{kind}: the RS answered {reply.read_bytes()[:60]!r}")
            servers[kind] = {"rs": base,
                             "streams": stack.enter_context(bare(reply, "streams")),
                             "protocol": stack.enter_context(bare(reply, "protocol"))}
        inactive = n * args.inactive
        crowded = None
        if inactive:  # --inactive 0: no second RS (its peers are over the source budget)
            console.print(f"N={n:,}: a second RS with the same {n:,} active peers and "
                          f"{inactive:,} that registered and left")
            crowded = stack.enter_context(rs(args.messages))
            populate(exe, crowded, n, inactive, tmp, leave=True)
            files["crowded"] = requests_file(tmp / "req-PQuery-crowded", [
                request("PQuery", i, c) for i, c in populate(exe, crowded, 0, n, tmp).items()])

        results: dict[tuple[str, str], list[Load]] = {}

        def measure(kind: str, label: str, server: Server, reqs: Path) -> None:
            results.setdefault((kind, label), []).append(
                oneshot(exe, server, args.clients, args.seconds, MAX_EXCHANGES, reqs))

        for run in range(args.runs):
            console.print(f"N={n:,}: run {run + 1} of {args.runs} (load {load_average():.1f})")
            for kind in KINDS:
                for label, server in servers[kind].items():
                    measure(kind, label, server, files[kind])
            if crowded is None:
                continue
            pair = [("active", base, files["PQuery"]), ("crowded", crowded, files["crowded"])]
            for label, server, reqs in pair if run % 2 == 0 else pair[::-1]:
                measure("PQuery", label, server, reqs)
    return main_rows(n, results), [inactive_row(n, inactive, results)] if crowded else []


def main_rows(n: int, results: dict[tuple[str, str], list[Load]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for kind in KINDS:
        ours = median_load(results[kind, "rs"])
        for server, label in (("streams", "bare streams"), ("protocol", "bare Protocol"),
                              ("rs", "p2pshare rs")):
            r = median_load(results[kind, server])
            ratios = ([f"{ours.rps / r.rps:.2f}", f"{r.cpu_us / ours.cpu_us:.2f}"]
                      if server != "rs" else ["", ""])
            rows.append([f"{n:,}", kind, label, f"{r.reply_bytes:,.0f}", round(r.rps),
                         f"{r.p50_us / 1000:.1f}", f"{r.p99_us / 1000:.1f}", round(r.cpu_us),
                         *ratios, r.errors, f"{r.load:.1f}"])
    return rows


def inactive_row(n: int, inactive: int, results: dict[tuple[str, str], list[Load]]
                 ) -> list[object]:
    active = median_load(results["PQuery", "active"])
    crowded = median_load(results["PQuery", "crowded"])
    return [f"{n:,}", f"{inactive:,}", f"{active.reply_bytes:,.0f}",
            f"{round(active.cpu_us)} / {round(crowded.cpu_us)}",
            f"{crowded.cpu_us / active.cpu_us:.2f}",
            f"{active.p50_us / 1000:.1f} / {crowded.p50_us / 1000:.1f}",
            f"{crowded.p50_us / active.p50_us:.2f}", f"{crowded.rps / active.rps:.2f}",
            active.errors + crowded.errors,
            f"{statistics.median([active.load, crowded.load]):.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[1000, 10000],
                        help="registered (active) peers, one measurement each")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are shown")
    parser.add_argument("--inactive", type=int, default=10,
                        help="inactive peers per active one in the second RS (default 10)")
    parser.add_argument("--messages", action="store_true",
                        help="let the RS print every message (to /dev/null), as by default")
    args = parser.parse_args()
    console.width = max(console.width, 132)  # the table is wide; a pipe would wrap it at 80
    with tempfile.TemporaryDirectory(prefix="p2pshare-bench-") as name:
        tmp = Path(name)
        exe = build_c(HERE / "oneshot.c", tmp)
        console.print(f"[bold]Registration server[/]: one connection per request, "
                      f"{args.clients} clients, {args.seconds:g} s per run, median of "
                      f"{args.runs}, {machine()}, load average {load_average():.2f} at start")
        rows: list[list[object]] = []
        inactive_rows: list[list[object]] = []
        for n in args.peers:
            ours, more = bench_size(exe, n, args, tmp)
            rows += ours
            inactive_rows += more
    result_table("P2P-DI RS, one connection per request (medians; ratios: p2pshare against "
                 "the bare server, 1.00 = as fast)",
                 ["peers", "message", "server", "reply B", "req/s", "p50 ms", "p99 ms",
                  "CPU µs/req", "req/s ratio", "CPU ratio", "errors", "load"], rows)
    result_table("PQuery with inactive peers: the same active peers and reply, without / with "
                 "the inactive ones (ratios: with ÷ without, 1.00 = no cost)",
                 ["active", "inactive", "reply B", "CPU µs/req", "CPU ratio", "p50 ms",
                  "p50 ratio", "req/s ratio", "errors", "load"], inactive_rows)


if __name__ == "__main__":
    main()
