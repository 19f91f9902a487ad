"""The tracker's front ends: HTTP routes (/announce, /scrape) and the UDP tracker (BEP 15).

Strategy: both front ends are thin translations between a codec and the one
``SwarmTable``, so HTTP and UDP peers meet in the same swarms under the same budgets and
rates. HTTP handlers are routes of the shared ``web.HttpServer`` (one port with the
dashboard); a refusal or a malformed query is answered 200 with a bencoded ``failure
reason`` (BEP 3: clients show it to the user; opentracker answers a bad parameter with a
bare 400 instead, which a client can only report as "HTTP error"). The UDP handler is
the ``net.udp.UdpServer``'s: malformed datagrams are dropped unanswered (answering
forged sources would make us a reflector); an announce or scrape whose connection id is
not the one its source address was given in this slot or the previous one gets an error
packet, as opentracker's "Connection ID missmatch"; only a connect is answered without
one, with 16 bytes for its 16 (no amplification). The secret behind the ids is drawn
once per process: a restarted tracker makes clients connect again, as BEP 15 expects.

Stale peers are dropped as swarms are touched, and ``sweep_forever`` drops those of
swarms nobody touches, once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from .. import limits
from ..errors import RemoteProtocolError
from ..protocol import bt_udp
from ..protocol.bt_tracker import (
    ScrapeStats,
    TrackerFailure,
    encode_announce_answer,
    encode_failure,
    encode_scrape_answer,
    parse_announce,
    parse_scrape,
)
from ..protocol.http import Query
from ..web.server import HttpServer, Reply
from .tracker import SwarmTable

__all__ = ["BtTracker"]

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain"  # what opentracker and most trackers send


class BtTracker:
    """One swarm table behind HTTP routes and a UDP handler.

    Args:
        table: the swarms (a fresh ``SwarmTable`` by default).
        clock: monotonic seconds (tests move it by hand).
    """

    def __init__(self, table: SwarmTable | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table or SwarmTable()
        self.clock = clock
        self._secret = secrets.token_bytes(32)

    # ------------------------------------------------------------------ HTTP
    def add_routes(self, http: HttpServer) -> None:
        """Serve ``/announce`` and ``/scrape`` (BEP 48's name for it) on ``http``."""
        http.add_route("/announce", self.http_announce)
        http.add_route("/scrape", self.http_scrape)

    def http_announce(self, path: str, query: Query, source: str) -> Reply:
        try:
            request = parse_announce(query)
            answer = self.table.announce(request, source, self.clock())
        except (RemoteProtocolError, TrackerFailure) as exc:
            return 200, CONTENT_TYPE, encode_failure(str(exc))
        return 200, CONTENT_TYPE, encode_announce_answer(
            answer, compact=request.compact, no_peer_id=request.no_peer_id)

    def http_scrape(self, path: str, query: Query, source: str) -> Reply:
        try:
            files = self.table.scrape(parse_scrape(query), source, self.clock())
        except (RemoteProtocolError, TrackerFailure) as exc:
            return 200, CONTENT_TYPE, encode_failure(str(exc))
        return 200, CONTENT_TYPE, encode_scrape_answer(files)

    # ------------------------------------------------------------------ UDP
    def datagram(self, data: bytes, host: str, port: int) -> bytes | None:
        """The answer to one UDP tracker datagram from ``host`` (already a plain IP)."""
        try:
            message = bt_udp.parse_udp_request(data, limits.MAX_SCRAPE_HASHES)
        except RemoteProtocolError as exc:
            log.debug("dropped a datagram from %s: %s", host, exc)
            return None
        now = self.clock()
        if isinstance(message, bt_udp.UdpConnect):
            return bt_udp.encode_udp_connect_answer(message.transaction_id,
                                                    self._connection_id(host, now, 0))
        if message.connection_id not in (self._connection_id(host, now, 0),
                                         self._connection_id(host, now, 1)):
            return bt_udp.encode_udp_error(message.transaction_id, "Connection ID mismatch.")
        try:
            if isinstance(message, bt_udp.UdpAnnounce):
                answer = self.table.announce(message.request, host, now)
                return bt_udp.encode_udp_announce_answer(message.transaction_id, answer,
                                                         ipv6=":" in host)
            files = self.table.scrape(list(message.hashes), host, now)
        except TrackerFailure as exc:
            return bt_udp.encode_udp_error(message.transaction_id, str(exc))
        return bt_udp.encode_udp_scrape_answer(
            message.transaction_id, (files.get(h, ScrapeStats()) for h in message.hashes))

    def _connection_id(self, host: str, now: float, age: int) -> int:
        slot = int(now // limits.UDP_CONNECTION_ID_SLOT) - age
        return bt_udp.udp_connection_id(self._secret, host, slot)

    # ------------------------------------------------------------------ upkeep
    async def sweep_forever(self) -> None:
        """Drop stale peers of every swarm each ``TRACKER_SWEEP_INTERVAL``, until cancelled."""
        while True:
            await asyncio.sleep(limits.TRACKER_SWEEP_INTERVAL)  # a period, not a wait for an event
            dropped = self.table.sweep(self.clock())
            if dropped:
                log.info("tracker: %d stale peers dropped", dropped)
