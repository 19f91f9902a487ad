"""Fuzz targets for the BitTorrent tracker codecs: the UDP tracker both ways (BEP 15), the
HTTP announce and scrape queries through the tracker's routes, and tracker answers as the
announce client reads them.

Each target returns or raises ``RemoteProtocolError``; anything else is a finding. The
server targets run the whole front end (``bt.tracker_server.BtTracker``) on one table, so
the table's bookkeeping meets the input too; what parses and is built by us is checked
to read back the same (an announce datagram, an announce query).
"""

from __future__ import annotations

from p2pshare.bt.tracker import SwarmTable, TableLimits
from p2pshare.bt.tracker_server import BtTracker
from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import bt_udp
from p2pshare.protocol.bt_tracker import (
    TrackerFailure,
    announce_query,
    parse_announce,
    parse_announce_answer,
    parse_http_answer,
    parse_scrape_answer,
)
from p2pshare.protocol.http import parse_query

# Small budgets, no rate: the fuzzer reaches the full-table paths, never "slow down".
_TRACKER = BtTracker(SwarmTable(TableLimits(max_swarms=8, max_swarm_peers=8, max_peers=32,
                                            per_source=4, burst=10**12, rate=10**9)))
_CLOCK = iter(range(10**12))


def bt_udp_server(data: bytes) -> None:
    """A datagram from one of four sources, with the connection id that source was given
    when the first byte is odd (so the table is reached); the answer must read back."""
    now = float(next(_CLOCK))
    _TRACKER.clock = lambda: now
    source = f"10.0.0.{data[0] % 4 if data else 0}"
    if data[:1] and data[0] % 2 and len(data) >= 16:
        cid = _TRACKER._connection_id(source, now, 0)
        data = cid.to_bytes(8, signed=True) + data[8:]
    try:
        message = bt_udp.parse_udp_request(data, 74)
    except RemoteProtocolError:
        message = None
    if isinstance(message, bt_udp.UdpAnnounce):
        again = bt_udp.encode_udp_announce(message.connection_id, message.transaction_id,
                                           message.request)
        assert bt_udp.parse_udp_request(again, 74) == message
    answer = _TRACKER.datagram(data, source, 6881)
    assert (answer is None) == (message is None)
    if answer is not None and message is not None:
        action = 0 if isinstance(message, bt_udp.UdpConnect) else data[11]
        try:
            bt_udp.parse_udp_answer(answer, message.transaction_id, action)
        except TrackerFailure:
            pass


def bt_udp_client(data: bytes) -> None:
    tid = int.from_bytes((data + bytes(8))[4:8], signed=True)
    for action in (bt_udp.UdpAction.CONNECT, bt_udp.UdpAction.ANNOUNCE,
                   bt_udp.UdpAction.SCRAPE):
        for ipv6 in (False, True):
            try:
                bt_udp.parse_udp_answer(data, tid, action, ipv6=ipv6)
            except TrackerFailure:
                pass


def bt_http_query(data: bytes) -> None:
    """A request target's query, through the HTTP layer's parser and both routes."""
    raw = data.decode("latin-1")
    query = parse_query(raw)  # RemoteProtocolError: the HTTP layer's 400
    try:
        request = parse_announce(query)
    except RemoteProtocolError:
        pass
    else:
        assert parse_announce(parse_query(announce_query(request))) == request
    for route in (_TRACKER.http_announce, _TRACKER.http_scrape):
        status, _, body = route("/", query, f"10.0.1.{len(data) % 4}")
        assert status == 200 and body[:1] == b"d"


def bt_http_answer(data: bytes) -> None:
    """A tracker's whole HTTP answer as the announce client reads it."""
    for parse in (parse_announce_answer, parse_scrape_answer):
        try:
            parse(data)
        except TrackerFailure:
            pass
    try:
        parse_http_answer(data)
    except RemoteProtocolError:
        pass
