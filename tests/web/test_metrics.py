"""Prometheus metrics scraped over HTTP from real servers, read back with
prometheus_client's own text parser: requests by method and status (the quick LOOKUP
path included), latency, bytes, connections, admission refusals, gauges; two servers with
their own registries in one process."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client.parser import text_string_to_metric_families

from p2pshare.index.server import IndexServer
from p2pshare.swarm.tracker import Tracker
from p2pshare.web.metrics import Metrics
from p2pshare.web.server import HttpServer

from ..aio import HOST, Raw, arun
from ..helpers import async_wait_for

LIST = b"LIST ALL P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\n\r\n"
MALFORMED = b"LOOKUP RFC 1 P2P-CI/1.0\r\nno colon here\r\n\r\n"
FROB = b"FROB RFC 2 P2P-CI/1.0\r\nHost: h\r\n\r\n"  # a method no protocol has
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@asynccontextmanager
async def watched(max_connections: int = 100) -> AsyncIterator[tuple[IndexServer, int, int]]:
    server = IndexServer(tracker=Tracker(), max_connections=max_connections)
    http = HttpServer()
    metrics = Metrics()
    metrics.add_route(http)
    metrics.watch(server.server)
    metrics.watch(http.server)
    metrics.gauge("records", "records", lambda: len(server.index))
    _, index_port = await server.start(HOST, 0)
    _, http_port = await http.start(HOST, 0)
    try:
        yield server, index_port, http_port
    finally:
        await http.aclose()
        await server.aclose()


@arun
async def test_requests_bytes_connections_and_gauges() -> None:
    async with watched() as (server, index_port, http_port):
        peer = await Raw.connect(index_port)
        add = b"ADD RFC 1 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\nTitle: t\r\n\r\n"
        lookup = b"LOOKUP RFC 2 P2P-CI/1.0\r\nHost: h\r\nPort: 1\r\nTitle: t\r\n\r\n"
        await peer.expect(add, b"P2P-CI/1.0 200 OK\r\n")
        await peer.line(), await peer.line(), await peer.line()
        await peer.expect(lookup, b"P2P-CI/1.0 404 Not Found\r\n\r\n")
        await peer.expect(FROB, b"P2P-CI/1.0 400 ")
        await peer.line()
        await peer.line()
        await peer.expect(LIST, b"P2P-CI/1.0 200 OK\r\n\r\nRFC 1 t h 1\r\n\r\n")  # a task
        bad = await Raw.connect(index_port)
        await bad.send(MALFORMED)
        assert (await bad.finish()).startswith(b"P2P-CI/1.0 400")
        samples = await asyncio.to_thread(scrape, http_port)
        assert value(samples, "p2pshare_requests_total", server="index", method="other",
                     status="400") == 2
        for method, status in (("ADD", "200"), ("LOOKUP", "404"), ("LIST", "200")):
            assert value(samples, "p2pshare_requests_total", server="index", method=method,
                         status=status) == 1, (method, samples)
            assert value(samples, "p2pshare_request_seconds_count", server="index",
                         method=method) == 1
        assert value(samples, "p2pshare_connections_open", server="index") == 1
        await bad.close()
        assert value(samples, "p2pshare_bytes_total", server="index", direction="out") > 0
        assert value(samples, "p2pshare_records") == 1
        await peer.close()
        await async_wait_for(lambda: server.active == 0)
        samples = await asyncio.to_thread(scrape, http_port)
        assert value(samples, "p2pshare_connections_open", server="index") == 0
        assert value(samples, "p2pshare_records") == 0
        assert value(samples, "p2pshare_bytes_total", server="index",
                     direction="in") == len(add + lookup + FROB + LIST + MALFORMED)  # kept, closed
        assert value(samples, "p2pshare_requests_total", server="http", method="GET",
                     status="200") == 1  # the scrape before this one


@arun
async def test_refusals_by_cap_and_two_registries_in_one_process() -> None:
    async with watched(max_connections=1) as (_server, index_port, http_port), \
            watched() as (_other, _other_index, other_http):
        first = await Raw.connect(index_port)
        await async_wait_for(lambda: _server.active == 1)
        second = await Raw.connect(index_port)
        assert await second.rest() == b""
        samples = await asyncio.to_thread(scrape, http_port)
        assert value(samples, "p2pshare_admission_total", server="index", cap="total",
                     outcome="refused") == 1
        others = await asyncio.to_thread(scrape, other_http)
        assert value(others, "p2pshare_admission_total", server="index", cap="total",
                     outcome="refused") == 0
        await first.close()
        await second.close()
