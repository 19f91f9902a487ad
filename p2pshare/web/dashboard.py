"""The live dashboard: ``/`` (one page) and ``/api/state`` (JSON), on an ``HttpServer``.

Strategy: the state comes from a ``source`` the caller gives (``index.state.index_state``
for an index server), so this module knows HTTP and rates, not the index. The page polls
``/api/state`` each second (no stream held open: the runtime's idle deadline and
admission caps govern browsers as any other client). Transfer rates are what the tracker
can see: pieces its members report (HAVE) times the piece size, per second, measured by
``RateBook`` between readings at least ``RATE_WINDOW`` apart, so that several browsers
polling at once do not shorten the window to nothing. One reading answers every
request for ``STATE_FRESH_FOR`` seconds (a lock makes concurrent askers wait for the
same reading), so a flood of /api/state requests, from any number of connections,
costs the loop the index server shares one reading per period, not one per request.
The JSON is documented for scripts in docs/dashboard.md#api-state.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from .. import limits
from ..protocol.http import Query
from .page import PAGE
from .server import HttpServer, Reply

__all__ = ["STATE_VERSION", "Dashboard", "RateBook"]

STATE_VERSION = 1  # raised when a field of /api/state changes meaning or goes
RATE_WINDOW = 1.0 * limits.SECONDS  # the shortest time a rate is measured over
# How long one reading of the state answers every /api/state: a reading costs O(rows)
# (up to a few hundred ms with big swarms), and clients may ask as often as they like.
STATE_FRESH_FOR = 0.5 * limits.SECONDS

Snapshot = dict[str, Any]  # what a source reads: docs/dashboard.md#api-state
SnapshotSource = Callable[[], Awaitable[Snapshot]]


class RateBook:
    """Per-second rates of counters that grow, each over at least ``window`` seconds.

    Pure: the caller gives the time. A key absent from a reading is forgotten, so the book
    holds no more keys than one reading has.
    """

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._seen: dict[Hashable, tuple[float, float, float]] = {}  # value, at, rate

    def update(self, values: dict[Hashable, float], now: float) -> dict[Hashable, float]:
        """The rate of each counter in ``values`` (0 until measured over a window)."""
        seen: dict[Hashable, tuple[float, float, float]] = {}
        for key, value in values.items():
            old = self._seen.get(key)
            if old is None or value < old[0]:  # new, or restarted (a member rejoined)
                seen[key] = (value, now, 0.0)
            elif now - old[1] >= self.window:
                seen[key] = (value, now, (value - old[0]) / (now - old[1]))
            else:
                seen[key] = old
        self._seen = seen
        return {key: entry[2] for key, entry in seen.items()}


class Dashboard:
    """Serves the page and its JSON from ``source``.

    Args:
        source: reads the state (peers, rfcs, swarms: docs/dashboard.md#api-state).
        clock: monotonic seconds, for rates and ``fresh_for``.
        fresh_for: seconds one reading answers every request (module docstring).
    """

    def __init__(self, source: SnapshotSource,
                 clock: Callable[[], float] = time.monotonic,
                 fresh_for: float = STATE_FRESH_FOR) -> None:
        self._source = source
        self._clock = clock
        self._rates = RateBook()
        self._fresh_for = fresh_for
        self._lock = asyncio.Lock()
        self._body = b""
        self._read_at = -math.inf

    def add_routes(self, http: HttpServer) -> None:
        """``/`` and ``/api/state`` on ``http``."""
        http.add_route("/", self.page)
        http.add_route("/api/state", self.api)

    def page(self, _path: str, _query: Query, _source: str) -> Reply:
        return 200, "text/html; charset=utf-8", PAGE

    async def api(self, _path: str, _query: Query, _source: str) -> Reply:
        async with self._lock:
            if self._clock() - self._read_at >= self._fresh_for:
                state = await self._source()
                self._read_at = self._clock()
                self._add_rates(state)
                body = {"version": STATE_VERSION, "time": round(time.time(), 3), **state}
                self._body = json.dumps(body, separators=(",", ":")).encode()
        return 200, "application/json", self._body

    def _add_rates(self, state: Snapshot) -> None:
        """Each swarm's and each member's ``rate``: bytes of verified pieces per second."""
        swarms = state.get("swarms", {}).get("rows", [])
        counters: dict[Hashable, float] = {}
        for s in swarms:
            counters[s["id"]] = s["held"] * s["piece_size"]
            for p in s["peers"]:
                counters[s["id"], p["host"], p["port"]] = p["have"] * s["piece_size"]
        rates = self._rates.update(counters, self._clock())
        for s in swarms:
            s["rate"] = round(rates[s["id"]], 1)
            for p in s["peers"]:
                p["rate"] = round(rates[s["id"], p["host"], p["port"]], 1)
