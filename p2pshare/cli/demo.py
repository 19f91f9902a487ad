"""``p2pshare demo``: the handout's demo (docs/p2p-ci.md#demo), checked step by step.

Strategy: a real index server and two real peers on loopback sockets in this process,
with generated RFC files. Each step prints the exchange as it crossed the wire and checks
what the handout says must happen; the demo exits 0 only if every check held. Everything
listens on one address, 127.0.0.1 unless told (``--listen ::1`` runs it all over IPv6);
both peers advertise one name for it (``localhost`` on 127.0.0.1, else the address).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from ..errors import Status
from ..host import join_hostport
from ..index.server import IndexServer
from ..peer import paths
from ..peer.client import send_get
from ..peer.node import Peer
from ..protocol import Request, ci
from ..samples import write_sample_rfcs
from ._run import fail
from .exits import Exit
from .menu import print_wire

console = Console(highlight=False)
HOST = "127.0.0.1"  # where the demo listens unless told


class Checks:
    """Records each expectation and prints it."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def expect(self, ok: bool, what: str) -> None:
        mark = "[green]✔[/]" if ok else "[red]✘[/]"
        console.print(f"{mark} {what}")
        if not ok:
            self.failed.append(what)


def _show_server_log() -> None:
    """Print the index server's log lines (the handout's "[Server] ..." lines) inline,
    unless ``-q`` asked for warnings only."""
    logging.getLogger("p2pshare").setLevel(logging.WARNING)
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        return
    server_log = logging.getLogger("p2pshare.index.server")
    server_log.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("    %(message)s"))
    server_log.addHandler(handler)
    server_log.propagate = False


def step(title: str) -> None:
    console.print(Rule(f"[bold]{title}"))


async def run_demo(folder: Path, host: str = HOST) -> int:
    _show_server_log()
    dir_a, dir_b = folder / "peerA", folder / "peerB"
    for stale in (*_rfc_files(dir_a), *_rfc_files(dir_b)):  # a kept --dir from a past run
        stale.unlink()
    write_sample_rfcs(dir_a, {123: 6_000, 791: 45_000})
    files_b = write_sample_rfcs(dir_b, {2345: 28_000, 3457: 120_000})
    checks = Checks()
    server = IndexServer()
    address = await server.start(host, 0)
    console.print(f"[bold]Index server listening on {join_hostport(*address)}[/] "
                  "(the handout's port 7734; the demo takes any free port)")
    name = "localhost" if host == HOST else host  # one name for both peers (A6, A11)
    peer_a = Peer(dir_a, address, hostname=name, upload_host=host, printer=print_wire)
    peer_b = Peer(dir_b, address, hostname=name, upload_host=host, printer=print_wire)
    try:
        await _walk(checks, server, peer_a, peer_b, files_b)
    finally:
        await peer_a.aclose()
        await peer_b.aclose()
        await server.aclose()
    step("Result")
    if checks.failed:
        console.print(f"[red]{len(checks.failed)} check(s) failed:[/] {checks.failed}")
        return fail(f"demo: {len(checks.failed)} check(s) failed", Exit.FAILURE)
    console.print("[green]Every step behaved as the P2P-CI/1.0 handout specifies.[/]")
    return Exit.OK


def _rfc_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if paths.rfc_number(p.name) is not None]


async def _walk(checks: Checks, server: IndexServer, a: Peer, b: Peer,
                files_b: dict[int, Path]) -> None:
    step("1. Peers start their upload servers, connect, and ADD their RFCs")
    for peer in (a, b):
        replies = await peer.start()
        checks.expect(all(r.ok for r in replies) and len(replies) == 2,
                      f"{join_hostport(peer.hostname, peer.upload_port)} registered 2 RFCs "
                      "(200 OK each)")
    step("2. The server's lists: peers connected and RFCs added")
    for host, port in server.index.peers():
        console.print(f"   peer {join_hostport(host, port)}")
    checks.expect(server.index.peer_count == 2 and len(server.index) == 4,
                  "server holds 2 peers and 4 RFC records")
    assert a.index is not None
    step("3. Peer A: LIST ALL (newest first)")
    listed = await a.index.list_all()
    checks.expect(listed.ok and [r.rfc for r in listed.records] == [3457, 2345, 791, 123],
                  "LIST ALL returns all 4 records, newest first")
    step("4. Peer A: LOOKUP an RFC that peer B holds")
    found = await a.index.lookup(2345, "Domain Names and Company Name Retrieval")
    checks.expect(found.ok and [(r.host, r.port) for r in found.records]
                  == [(b.hostname, b.upload_port)], "LOOKUP RFC 2345 names peer B")
    console.print(f"   (both peers advertise {b.hostname!r}: the index keys peers by host "
                  "and upload port, A6/A11)")
    step("5. Peer A downloads RFC 2345 from peer B (GET), then ADDs it")
    got = await a.get(2345)
    saved = a.folder / "rfc2345.txt"
    same = saved.is_file() and saved.read_bytes() == files_b[2345].read_bytes()
    for holder, outcome in got.download.attempts if got.download else []:
        console.print(f"   GET from {join_hostport(holder.host, holder.port)}: {outcome}")
    checks.expect(got.download is not None and got.download.path is not None and same,
                  "GET 200: the file arrived byte-identical under its final name")
    checks.expect(got.add is not None and got.add.ok, "peer A then ADDed RFC 2345 (A10)")
    await _errors(checks, a, b)
    step("9. Peer B leaves (closes its connection); the index shrinks")
    before, b_port = len(server.index), b.upload_port
    await b.aclose()
    await _wait(lambda: len(server.index) == before - 2)
    after = await a.index.list_all()
    gone = all(r.port != b_port for r in after.records) and len(after.records) == 3
    checks.expect(gone, f"index went from {before} to {len(server.index)} records; "
                  "none of peer B's left")


async def _errors(checks: Checks, a: Peer, b: Peer) -> None:
    assert a.index is not None
    step("6. 404 Not Found: LOOKUP of an RFC nobody has, and GET of a file B lacks")
    missing = await a.index.lookup(9999)
    checks.expect(missing.status == Status.NOT_FOUND, "LOOKUP RFC 9999 -> 404")
    await _get_status(checks, b, ci.to_event(ci.CIRequest(ci.Method.GET, 9999, b.hostname,
                                                          os="demo")), Status.NOT_FOUND)
    step("7. 400 Bad Request: malformed requests to the server and to a peer")
    bad = await a.index.exchange(Request("LIST", "EVERYTHING", ci.VERSION,
                                         (("Host", a.hostname), ("Port", str(a.upload_port)))))
    checks.expect(bad.status == Status.BAD_REQUEST, "LIST EVERYTHING -> 400")
    await _get_status(checks, b, Request("GET", "RFC two", ci.VERSION, (("Host", b.hostname),)),
                      Status.BAD_REQUEST)
    step("8. 505 P2P-CI Version Not Supported")
    old = await a.index.exchange(Request("LIST", "ALL", "P2P-CI/2.0",
                                         (("Host", a.hostname), ("Port", str(a.upload_port)))))
    checks.expect(old.status == Status.VERSION_NOT_SUPPORTED, "LIST ALL P2P-CI/2.0 -> 505")
    await _get_status(checks, b, Request("GET", "RFC 2345", "P2P-CI/2.0",
                                         (("Host", b.hostname), ("OS", "demo"))),
                      Status.VERSION_NOT_SUPPORTED)
    still = await a.index.list_all()
    checks.expect(still.ok and len(still.records) == 5,
                  "after the bad requests peer A is still connected and its records kept")


async def _get_status(checks: Checks, target: Peer, request: Request, want: Status) -> None:
    stream, head = await send_get(target.upload.server.address[0], target.upload_port, request,
                                  print_wire)
    await stream.aclose()
    checks.expect(head.status == want, f"{request.method} {request.target} {request.version} "
                  f"to peer {target.hostname} -> {head.status}")


async def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``condition`` with a deadline (polling the event loop, no fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (the server's state has no event to await)
            await asyncio.sleep(0.01)
