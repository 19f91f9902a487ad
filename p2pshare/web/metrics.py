"""Prometheus metrics of a process's servers, served at ``/metrics`` on an ``HttpServer``.

Strategy: instrument in two places only. The runtime (``net.runtime``) already counts what
every server does: connections open, bytes in and out, newcomers refused and connections
evicted by the cap reached; those are read when Prometheus scrapes (a collector), costing
nothing per request. Requests are told to ``Metrics.answered`` by every ``Link`` of a
watched server (``Server.observer``): one counter by server, method and status, one
latency histogram by server and method. Methods outside the protocols' own are counted
as ``other``, so a client cannot grow the label space. What the applications hold
(records, swarms, transfers) comes from gauges read at scrape time (``gauge``).

Each ``Metrics`` has its own ``CollectorRegistry``, not prometheus_client's global one:
tests run several servers in one process. ``prometheus_client`` is an optional
dependency (the ``metrics`` extra): import this module only when metrics are asked
for. Names are listed in docs/dashboard.md#metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..net.runtime import Server
from ..protocol import ci, di, swarm
from ..protocol.http import Query
from .server import HttpServer, Reply

__all__ = ["KNOWN_METHODS", "LATENCY_BUCKETS", "Metrics"]

KNOWN_METHODS = frozenset({*ci.Method, *di.Method, *swarm.Method, "GET", "HEAD", "POST"})
# Seconds: an in-memory answer takes tens of microseconds, a shared-store one a
# millisecond, a LIST ALL of a big index or a piece on a slow link seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The metrics of the servers it ``watch``es and the gauges it is given."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._servers: list[Server] = []
        self._gauges: list[tuple[str, str, Callable[[], float]]] = []
        self._requests = Counter("p2pshare_requests", "Requests answered, by server, "
                                 "method and status (0: the connection failed first)",
                                 ["server", "method", "status"], registry=self.registry)
        self._latency = Histogram("p2pshare_request_seconds", "Time from a whole request "
                                  "to its answer's last byte handed to the socket",
                                  ["server", "method"], buckets=LATENCY_BUCKETS,
                                  registry=self.registry)
        self.registry.register(_RuntimeCollector(self._servers, self._gauges))

    def watch(self, server: Server) -> None:
        """Count ``server``'s connections, bytes, refusals and requests (before it starts:
        a watched server answers every request on the general path)."""
        server.observer = self
        self._servers.append(server)

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """A gauge ``p2pshare_<name>`` whose value ``read`` gives at each scrape."""
        self._gauges.append((f"p2pshare_{name}", doc, read))

    def answered(self, server: str, method: str, status: int, seconds: float) -> None:
        label = method if method in KNOWN_METHODS else "other"
        self._requests.labels(server, label, str(status)).inc()
        self._latency.labels(server, label).observe(seconds)

    def page(self) -> bytes:
        """The Prometheus text format of everything above."""
        return generate_latest(self.registry)

    def add_route(self, http: HttpServer, path: str = "/metrics") -> None:
        """Serve ``page`` at ``path`` of ``http``."""
        def scrape(_path: str, _query: Query, _source: str) -> Reply:
            return 200, CONTENT_TYPE_LATEST, self.page()

        http.add_route(path, scrape)


class _RuntimeCollector(Collector):
    """Reads the runtime's own counts when Prometheus scrapes."""

    def __init__(self, servers: list[Server],
                 gauges: list[tuple[str, str, Callable[[], float]]]) -> None:
        self._servers = servers
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        open_ = GaugeMetricFamily("p2pshare_connections_open", "Connections open now",
                                  labels=["server"])
        moved = CounterMetricFamily("p2pshare_bytes", "Bytes received (in) and sent (out)",
                                    labels=["server", "direction"])
        refused = CounterMetricFamily("p2pshare_admission", "Newcomers refused and "
                                      "connections evicted at a connection cap",
                                      labels=["server", "cap", "outcome"])
        for server in self._servers:
            name = server.policy.name
            open_.add_metric([name], server.active)
            received, sent = server.bytes_moved
            moved.add_metric([name, "in"], received)
            moved.add_metric([name, "out"], sent)
            for cap in ("total", "per_source"):
                for outcome in ("refused", "evicted"):
                    refused.add_metric([name, cap, outcome], server.refusals[cap, outcome])
        yield from (open_, moved, refused)
        yield from _gauges(self._gauges)


def _gauges(gauges: Iterable[tuple[str, str, Callable[[], float]]]) -> Iterator[Metric]:
    for name, doc, read in gauges:
        yield GaugeMetricFamily(name, doc, value=read())
