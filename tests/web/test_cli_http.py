"""``p2pshare server --http-port --metrics-port`` and ``p2pshare rs --metrics-port`` as
real processes: the dashboard's JSON and the metrics follow a real client's ADD; one port
given twice is one server with every route."""

from __future__ import annotations

import json
import re
import socket
import urllib.request

from ..aio import free_port
from ..cli.test_cli import SERVER_UP, process, started
from ..helpers import read_until, wait_for
from .test_metrics import value

HTTP_UP = re.compile(r"\[HTTP\] (.*) on \S+:(\d+)")


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        body: bytes = answer.read()
        return body


def scraped(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(get(port, "/metrics").decode())
            for s in f.samples}


def test_server_dashboard_and_metrics_on_one_port() -> None:
    with process(["server", "--listen", "127.0.0.1", "--port", "0", "--http-port", "0",
                  "--metrics-port", "0"]) as proc:
        index_port = started(proc, SERVER_UP, "listening on")
        assert proc.stdout is not None
        m = HTTP_UP.search(read_until(proc.stdout, "[HTTP]"))
        assert m is not None and m.group(1) == "/, /announce, /api/state, /metrics, /scrape"
        http_port = int(m.group(2))
        assert b"<title>p2pshare dashboard</title>" in get(http_port, "/")
        with socket.create_connection(("127.0.0.1", index_port)) as peer:
            peer.sendall(b"ADD RFC 42 P2P-CI/1.0\r\nHost: h\r\nPort: 9\r\nTitle: Answer\r\n\r\n")
            assert peer.recv(100).startswith(b"P2P-CI/1.0 200 OK")
            state = json.loads(get(http_port, "/api/state"))
            assert state["rfcs"]["rows"] == [{"rfc": 42, "title": "Answer",
                                              "holders": ["h:9"]}]
            samples = scraped(http_port)
            assert value(samples, "p2pshare_records") == 1
            assert value(samples, "p2pshare_requests_total", server="index", method="ADD",
                         status="200") == 1
        wait_for(lambda: value(scraped(http_port), "p2pshare_records") == 0)


def test_rs_metrics() -> None:
    with process(["rs", "--listen", "127.0.0.1", "--port", "0", "--metrics-port", "0"]) as proc:
        assert proc.stdout is not None
        m = HTTP_UP.search(read_until(proc.stdout, "[HTTP]"))
        assert m is not None and m.group(1) == "/metrics"
        samples = scraped(int(m.group(2)))
        assert ("p2pshare_di_peers_active", frozenset()) in samples
        assert value(samples, "p2pshare_connections_open", server="rs") == 0


def test_dashboard_and_metrics_on_two_ports() -> None:
    with process(["server", "--listen", "127.0.0.1", "--port", "0", "--http-port", "0",
                  "--metrics-port", str(free_port())]) as proc:
        assert proc.stdout is not None
        out = read_until(proc.stdout, "[HTTP] /metrics")
        ports = {m.group(1): int(m.group(2)) for m in HTTP_UP.finditer(out)}
        # The HTTP port also carries the BitTorrent tracker's routes (docs/bittorrent.md).
        assert set(ports) == {"/, /announce, /api/state, /scrape", "/metrics"}
        get(ports["/, /announce, /api/state, /scrape"], "/api/state")
        text = get(ports["/metrics"], "/metrics").decode()
        lines = [line for line in text.splitlines() if not line.startswith("#")]
        assert len(lines) == len({line.rsplit(" ", 1)[0] for line in lines})  # none twice
        samples = scraped(ports["/metrics"])
        assert value(samples, "p2pshare_requests_total", server="http", method="GET",
                     status="200") == 1
        assert value(samples, "p2pshare_connections_open", server="http-2") == 1
