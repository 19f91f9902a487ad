"""The announce client: tell a tracker (HTTP or UDP) about us and learn the swarm's peers.

Strategy: the codecs (``protocol.bt_tracker``, ``protocol.bt_udp``) build and read every
message; this module only moves bytes, under one deadline for the whole announce (the
caller's ``timeout``). HTTP: one HTTP/1.0 GET on a fresh connection, read to its end (at
most a head and ``MAX_BENCODE_SIZE`` of body), so no keep-alive or chunked framing to
get wrong. UDP (BEP 15): connect, then announce with the connection id, retried after
15 * 2**n seconds as the BEP says, but never past the deadline; each try has a fresh
random transaction id, and answers to anything else are skipped (``net.udp``). A
connection id is used for a minute (BEP 15), across announces to the same tracker (a
few hundred trackers remembered); one the tracker refuses is forgotten and the announce
connects again, once.
A v2 torrent's 32-byte info-hash is sent cut to 20 bytes (BEP 52). Both kinds leave from
the ``origin`` given (the address we listen on, when that is one: ``net.origin``), since
the tracker lists the address an announce comes from.

Failures are ``PeerGone`` (unreachable, silent past the deadline), ``TrackerFailure``
(the tracker refused: its failure reason) or ``RemoteProtocolError`` (garbled answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable

from .. import limits
from ..errors import LocalProtocolError, PeerGone, RemoteProtocolError
from ..host import join_hostport
from ..net.origin import ANYWHERE, Origin
from ..net.udp import UdpClient
from ..protocol import bt_udp
from ..protocol.bt_tracker import (
    AnnounceEvent,
    AnnounceRequest,
    AnnounceResult,
    ScrapeStats,
    TrackerFailure,
    announce_query,
    http_get,
    parse_announce_answer,
    parse_http_answer,
    parse_scrape_answer,
    scrape_query,
    tracker_hash,
)

__all__ = ["AnnounceEvent", "AnnounceResult", "TrackerFailure", "announce", "scrape"]

_READ_LIMIT = limits.MAX_HEAD + limits.MAX_BENCODE_SIZE


async def announce(url: str, info_hash: bytes, peer_id: bytes, port: int,
                   event: AnnounceEvent | str, uploaded: int, downloaded: int, left: int,
                   numwant: int | None = None, *, timeout: float,
                   key: bytes = b"", origin: Origin = ANYWHERE) -> AnnounceResult:
    """Announce to the tracker at ``url`` (``http://...`` or ``udp://host:port``).

    Args:
        info_hash: 20 bytes (v1) or 32 (v2: sent cut to 20, BEP 52).
        event: an ``AnnounceEvent`` or its HTTP word (``""``, ``started``, ...).
        numwant: peers wanted; None: the tracker's default.
        timeout: seconds for the whole announce, retries included.
        origin: the address we listen on, if one: the announce comes from it, and the
            tracker records that address (``net.origin``).

    Raises:
        PeerGone: the tracker cannot be reached or stays silent past ``timeout``.
        TrackerFailure: the tracker refused (its failure reason), or the URL is not
            ``http://host[:port]/...`` or ``udp://host:port``.
        RemoteProtocolError: the answer is garbled.
        LocalProtocolError: ``event`` is not an event's word.
    """
    request = AnnounceRequest(
        info_hash=tracker_hash(info_hash), peer_id=peer_id, port=port, uploaded=uploaded,
        downloaded=downloaded, left=left, event=_event(event), numwant=numwant, key=key)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "udp":
        return await _udp_announce(parts, request, timeout, origin)
    body = await _http(parts, announce_query(request), timeout, origin)
    return parse_announce_answer(body)


async def scrape(url: str, hashes: list[bytes], *, timeout: float,
                 origin: Origin = ANYWHERE) -> dict[bytes, ScrapeStats]:
    """Scrape ``hashes`` (BEP 48 over HTTP: ``/announce`` becomes ``/scrape``; BEP 15).

    Raises:
        PeerGone, TrackerFailure, RemoteProtocolError: as ``announce``.
    """
    wanted = [tracker_hash(h) for h in hashes]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "udp":
        stats = await _udp_scrape(parts, wanted, timeout, origin)
        return dict(zip(wanted, stats, strict=False))
    head, slash, last = parts.path.rpartition("/")
    if not last.startswith("announce"):
        raise TrackerFailure(f"{url} has no scrape address (BEP 48)")
    parts = parts._replace(path=head + slash + "scrape" + last.removeprefix("announce"))
    return parse_scrape_answer(await _http(parts, scrape_query(wanted), timeout, origin))


def _event(event: AnnounceEvent | str) -> AnnounceEvent:
    if isinstance(event, AnnounceEvent):
        return event
    words = {e.word: e for e in AnnounceEvent}
    if event not in words:
        raise LocalProtocolError(f"no announce event {event!r}")
    return words[event]


def _address(parts: urllib.parse.SplitResult, default_port: int | None) -> tuple[str, int]:
    """Host and port of a tracker URL (UDP has no default port)."""
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError:  # a port that is not a number, or out of range
        host, port = None, None
    if not host or not port:
        raise TrackerFailure(f"no host and port in tracker address {parts.geturl()}")
    return host, port


# ------------------------------------------------------------------ HTTP
async def _http(parts: urllib.parse.SplitResult, query: str, timeout: float,
                origin: Origin) -> bytes:
    if parts.scheme != "http":
        raise TrackerFailure(f"unsupported tracker address {parts.geturl()} (http, udp)")
    host, port = _address(parts, 80)
    target = (parts.path or "/") + "?" + (parts.query + "&" if parts.query else "") + query
    try:
        async with asyncio.timeout(timeout):
            data = await _fetch(host, port, http_get(host, port, target), origin)
    except TimeoutError:
        raise PeerGone(f"tracker {join_hostport(host, port)} silent for {timeout} s") from None
    except OSError as exc:
        raise PeerGone(f"tracker {join_hostport(host, port)}: {exc}") from exc
    status, body = parse_http_answer(data)
    if status != 200:
        with contextlib.suppress(RemoteProtocolError):
            parse_announce_answer(body)  # raises TrackerFailure if the body says why
        raise RemoteProtocolError(f"tracker answered HTTP {status}")
    return body


async def _fetch(host: str, port: int, request: bytes, origin: Origin) -> bytes:
    reader, writer = await origin.open_connection(host, port, limit=_READ_LIMIT)
    try:
        writer.write(request)
        await writer.drain()
        chunks: list[bytes] = []
        total = 0
        while total <= _READ_LIMIT and (data := await reader.read(_READ_LIMIT + 1 - total)):
            chunks.append(data)
            total += len(data)
        if total > _READ_LIMIT:
            raise RemoteProtocolError("tracker answer longer than the bencode limit")
        return b"".join(chunks)
    finally:
        writer.close()


# ------------------------------------------------------------------ UDP (BEP 15)
async def _udp_announce(parts: urllib.parse.SplitResult, request: AnnounceRequest,
                        timeout: float, origin: Origin) -> AnnounceResult:
    result = await _udp(parts, timeout, origin, bt_udp.UdpAction.ANNOUNCE,
                        lambda cid, tid: bt_udp.encode_udp_announce(cid, tid, request))
    assert isinstance(result, AnnounceResult)
    return result


async def _udp_scrape(parts: urllib.parse.SplitResult, hashes: list[bytes],
                      timeout: float, origin: Origin) -> list[ScrapeStats]:
    result = await _udp(parts, timeout, origin, bt_udp.UdpAction.SCRAPE,
                        lambda cid, tid: bt_udp.encode_udp_scrape(cid, tid, hashes))
    assert isinstance(result, list)
    return result


async def _udp(parts: urllib.parse.SplitResult, timeout: float, origin: Origin,
               action: int, message: Callable[[int, int], bytes]) -> object:
    """Send ``message(connection id, transaction id)`` for ``action``, connecting first
    when we hold no id of this tracker younger than ``UDP_CONNECTION_ID_REUSE``."""
    host, port = _address(parts, None)
    deadline = time.monotonic() + timeout
    try:  # not asyncio.wait_for: on 3.11 it loses a cancel that lands as the open ends
        async with asyncio.timeout(timeout):
            client = await UdpClient.open(host, port, origin)
    except TimeoutError:
        raise PeerGone(f"cannot resolve {host} in {timeout} s") from None
    tracker = (host, port, origin.hosts)  # the tracker ties an id to our address
    cached = _connection_id(tracker) is not None
    try:
        try:
            return await _retrying(client, tracker, deadline, action, message)
        except TrackerFailure:
            if not cached:  # refused with a fresh id: the refusal stands
                raise
            _IDS.pop(tracker, None)  # perhaps a restarted tracker: connect again
            return await _retrying(client, tracker, deadline, action, message)
    finally:
        client.close()


async def _retrying(client: UdpClient, tracker: _Tracker, deadline: float,
                    action: int, message: Callable[[int, int], bytes]) -> object:
    """BEP 15 retries: the n-th try waits 15 * 2**n s, all within ``deadline``; each try
    has a fresh transaction id, and connects again once its id is a minute old."""
    for attempt in range(limits.UDP_MAX_RETRIES + 1):
        wait = min(deadline - time.monotonic(), limits.UDP_RETRY_BASE * 2**attempt)
        if wait <= 0:
            break
        try:
            connection = _connection_id(tracker)
            if connection is None:
                got = await _ask(client, bt_udp.UdpAction.CONNECT, bt_udp.encode_udp_connect,
                                 wait)
                assert isinstance(got, int)
                connection = _remember(tracker, got)
            return await _ask(client, action, functools.partial(message, connection), wait)
        except TimeoutError:
            continue
    raise PeerGone("UDP tracker silent until the deadline")


async def _ask(client: UdpClient, action: int, build: Callable[[int], bytes],
               wait: float) -> object:
    tid = secrets.randbits(31)
    return await client.ask(build(tid), lambda answer: bt_udp.parse_udp_answer(
        answer, tid, action, ipv6=client.ipv6), wait)


# Connection ids of the trackers asked lately (BEP 15: one may be used for a minute), so
# that a hybrid torrent's two announces, or a seed's many torrents, connect once a minute.
_Tracker = tuple[str, int, tuple[str, ...]]  # host, port, the addresses we announce from
_IDS: OrderedDict[_Tracker, tuple[int, float]] = OrderedDict()  # id, when given


def _connection_id(tracker: _Tracker) -> int | None:
    held = _IDS.get(tracker)
    if held is None or time.monotonic() - held[1] > limits.UDP_CONNECTION_ID_REUSE:
        return None
    return held[0]


def _remember(tracker: _Tracker, connection: int) -> int:
    _IDS.pop(tracker, None)
    _IDS[tracker] = (connection, time.monotonic())
    while len(_IDS) > limits.UDP_CLIENT_IDS:
        _IDS.popitem(last=False)
    return connection
