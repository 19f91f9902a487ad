"""The dashboard in a real headless browser: Playwright driving the system's Chromium
(Debian's ``chromium`` package; nothing is downloaded), against a real index server.
A peer that joins (a real socket client ADDing an RFC) appears on the page, with its RFC
and a title that holds markup shown as text; when it leaves, the page drops it; so does
a torrent announced to the BitTorrent tracker, once its peer stops. Skipped,
saying why, only when no Chromium is installed (CI installs it: .ci/run)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, async_playwright, expect

from p2pshare import limits
from p2pshare.index.server import IndexServer
from p2pshare.index.state import index_state
from p2pshare.swarm.tracker import Tracker
from p2pshare.web.dashboard import Dashboard
from p2pshare.web.server import HttpServer

from ..aio import HOST, Raw, arun_steady
from ..helpers import DEADLINE
from .test_torrents import V1, front, join

ADD = b"ADD RFC %d P2P-CI/1.0\r\nHost: %s\r\nPort: %d\r\nTitle: %s\r\n\r\n"


def chromium() -> str:
    """The system Chromium's path."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium installed (apt-get install -y chromium)")


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium(), headless=True,
                                            args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@arun_steady
async def test_the_page_shows_a_peer_that_joins_and_drops_one_that_leaves() -> None:
    server = IndexServer(tracker=Tracker())
    http = HttpServer()
    Dashboard(lambda: index_state(server, limits.DASHBOARD_ROWS, 8)).add_routes(http)
    _, index_port = await server.start(HOST, 0)
    _, http_port = await http.start(HOST, 0)
    try:
        async with browser() as chrome:
            page = await chrome.new_page()
            await page.goto(f"http://{HOST}:{http_port}/")
            peers = page.locator("#peers tbody")
            status = page.locator("#status")
            await expect(status).to_contain_text("live", timeout=DEADLINE * 1000)
            await expect(peers).to_contain_text("no peer connected")

            stays = await Raw.connect(index_port)
            await stays.send(ADD % (1, b"stays.example", 6001, b"Stays"))
            leaves = await Raw.connect(index_port)
            await leaves.send(ADD % (2345, b"leaves.example", 6002, b"<img src=x> & co"))
            await expect(peers).to_contain_text("leaves.example:6002", timeout=DEADLINE * 1000)
            await expect(peers).to_contain_text("stays.example:6001")
            rfcs = page.locator("#rfcs tbody")
            await expect(rfcs).to_contain_text("2345")
            await expect(rfcs).to_contain_text("<img src=x> & co")  # text, not markup
            assert await page.locator("#rfcs img").count() == 0
            await expect(page.locator("#n-peers")).to_have_text("2")

            await leaves.close()
            await expect(peers).not_to_contain_text("leaves.example", timeout=DEADLINE * 1000)
            await expect(peers).to_contain_text("stays.example:6001")
            await expect(rfcs).not_to_contain_text("2345")
            await expect(page.locator("#n-peers")).to_have_text("1")
            await stays.close()
    finally:
        await http.aclose()
        await server.aclose()


@arun_steady
async def test_the_page_shows_a_torrent_announced_and_drops_it_once_stopped() -> None:
    """The BitTorrent tracker's table: a peer's HTTP announce puts its torrent on the
    page (info-hash, counts, the peer), its ``event=stopped`` takes it off."""
    async with front() as f, browser() as chrome:
        page = await chrome.new_page()
        await page.goto(f"http://{HOST}:{f.http_port}/")
        torrents = page.locator("#torrents tbody")
        await expect(torrents).to_contain_text("no torrent", timeout=DEADLINE * 1000)
        await join(f.http, V1, 6881, 2048, "started")
        await expect(torrents).to_contain_text(V1.hex(), timeout=DEADLINE * 1000)
        await expect(torrents).to_contain_text(f"{HOST}:6881 2.0 KiB left")
        await expect(torrents).to_contain_text("0 / 1")
        await expect(page.locator("#n-torrents")).to_have_text("1")
        await join(f.http, V1, 6881, 2048, "stopped")
        await expect(torrents).to_contain_text("no torrent", timeout=DEADLINE * 1000)
        await expect(page.locator("#n-torrents")).to_have_text("0")
