"""Make docs/dashboard.png: the dashboard of a real index server, in headless Chromium.

An index server (with its tracker) and its dashboard on loopback; three peers ADD RFCs
over real connections; one swarm has two seeds and a leech whose HAVE reports grow, so
that the page shows rates and piece availability; two torrents are announced to the
BitTorrent tracker over HTTP (a seed and a leech). Then Playwright drives the system's
Chromium (Debian's ``chromium``; nothing is downloaded) and saves the page.

    python bench/dashboard_screenshot.py [--out docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
from pathlib import Path

from playwright.async_api import async_playwright

from p2pshare import limits
from p2pshare.bt.announce import announce
from p2pshare.bt.tracker_server import BtTracker
from p2pshare.cli.sites import index_sites
from p2pshare.index.server import IndexServer
from p2pshare.swarm.client import TrackerClient
from p2pshare.swarm.manifest import Manifest
from p2pshare.swarm.pieces import full
from p2pshare.swarm.tracker import Tracker

HOST = "127.0.0.1"
PEERS = {
    ("alice.lan", 6001): [(2616, "Hypertext Transfer Protocol -- HTTP/1.1"),
                          (9110, "HTTP Semantics"), (9112, "HTTP/1.1")],
    ("bob.lan", 6002): [(793, "Transmission Control Protocol"),
                        (9293, "Transmission Control Protocol (TCP)")],
    ("carol.lan", 6003): [(9110, "HTTP Semantics"), (8305, "Happy Eyeballs Version 2")],
}
PIECES = 160


def iso() -> Manifest:
    """A manifest of a 40 MiB file (its pieces' digests made up: the tracker checks the
    manifest against its id, never the data)."""
    size = PIECES * limits.SWARM_PIECE_SIZE
    digests = tuple(hashlib.sha256(b"%d" % i).digest() for i in range(PIECES))
    return Manifest("debian-13-netinst.iso", size, limits.SWARM_PIECE_SIZE, digests)


async def peers(port: int) -> list[asyncio.StreamWriter]:
    held = []
    for (host, peer_port), rfcs in PEERS.items():
        reader, writer = await asyncio.open_connection(HOST, port)
        for number, title in rfcs:
            writer.write(f"ADD RFC {number} P2P-CI/1.0\r\nHost: {host}\r\nPort: {peer_port}"
                         f"\r\nTitle: {title}\r\n\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")
            await reader.readuntil(b"\r\n\r\n")
        held.append(writer)
    return held


async def swarm(port: int, leech_done: asyncio.Event) -> None:
    m = iso()
    clients = []
    for host, piece_port, mask in (("seed1.lan", 7001, full(PIECES)),
                                   ("seed2.lan", 7002, full(PIECES) >> 100),
                                   ("leech.lan", 7003, 0)):
        client = await TrackerClient.connect(HOST, port)
        await client.announce(m, host, piece_port)
        await client.have(m.id, mask)
        clients.append(client)
    held = 0
    while not leech_done.is_set():
        held = min(PIECES - 20, held + 6)
        await clients[2].have(m.id, full(held))
        await asyncio.sleep(0.25)  # the leech's pace, shown as its rate
    for client in clients:
        await client.aclose()


async def torrents(http_port: int) -> None:
    """A seed and a leech of one torrent, and a leech of another, over HTTP."""
    url = f"http://{HOST}:{http_port}/announce"
    for name, port, left in ((b"ubuntu", 6881, 0), (b"ubuntu", 6882, 3 << 20),
                             (b"fedora", 6883, 700 << 20)):
        await announce(url, hashlib.sha1(name).digest(), b"-PS0001-%012d" % port, port,
                       "started", 0, 0, left, timeout=5)


async def main(out: Path) -> None:
    server = IndexServer(tracker=Tracker(), trust_named_hosts=True)
    sites = index_sites(server, 0, None, BtTracker())
    _, port = await server.start(HOST, 0)
    await sites.start(HOST)
    http_port = sites.on(0).server.address[1]
    done = asyncio.Event()
    try:
        writers = await peers(port)
        await torrents(http_port)
        async with asyncio.TaskGroup() as group:
            group.create_task(swarm(port, done))
            try:
                await shoot(f"http://{HOST}:{http_port}/", out)
            finally:
                done.set()
        for writer in writers:
            writer.close()
    finally:
        await sites.aclose()
        await server.aclose()


async def shoot(url: str, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no Chromium installed (apt-get install -y chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True,
                                           args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1280, "height": 760})
        await page.goto(url)
        await page.wait_for_function(
            "document.querySelectorAll('#swarms tbody tr td').length > 3 && "
            "document.querySelectorAll('#torrents tbody tr').length == 2 && "
            "!document.getElementById('n-rate').textContent.startsWith('0 ')",
            timeout=30_000)
        await page.screenshot(path=str(out), full_page=True)
        await browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "docs"
                        / "dashboard.png")
    asyncio.run(main(parser.parse_args().out))
