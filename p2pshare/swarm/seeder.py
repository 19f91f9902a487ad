"""The piece server: serves verified pieces of the files in a ``Library`` to other peers.

Strategy: on the one server runtime (``net.runtime``): many requests per connection,
answered in order (the runtime reads no further request until the current answer is
sent). A piece goes out by ``sendfile`` from its offset (zero copy): at once, in the
request's own callback, when the socket takes it whole (``Link.sendfile_now``: no task, no
future, no writer registered), else the rest as the socket drains. Only (swarm id, piece
index) pairs that the library holds verified can be reached; anything else is a 404.

Upload slots are shared fairly among source addresses (the TCP source, which cannot be
forged), by the rule the runtime admits connections with (``net.admission``):
``max_uploads`` slots, at most ``limits.MAX_UPLOADS_PER_SOURCE`` of them held by one
address. When every slot is taken, a newcomer from an address holding fewer than the
address holding the most gets that address's least productive slot (its connection is
closed); a newcomer that gets no slot (its own address holds its share, or none holds
more) gets ``503`` with Retry-After to its first request, and is closed. So a host that
opens 64 connections holds at most 16 slots, and a host with none gets one even when every
slot is taken. A connection that sends no request for ``limits.SWARM_IDLE_TIMEOUT`` is
closed, and so is one whose request head (or body) does not arrive whole within
``limits.HEAD_TIMEOUT``. An optional rate limit (bytes per second, all connections together)
paces uploads in short runs (``net.rate``, the same limiter a download's
``--max-download-rate`` uses), so that a paced peer shows steady progress to a downloader
judging it; tests use it to keep a download in progress long enough to interrupt it.

While the network limits its upload of a swarm it holds whole (``Uplink: full``), a
seeder's answers name the pieces it began sending to other connections lately (the Sent
header, ``SentLog``, within ``limits.SENT_SECONDS``), so that downloaders do not ask it
for a second copy of what is already on its way to one of them.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from operator import itemgetter
from typing import BinaryIO

from .. import limits
from ..errors import Status
from ..host import join_hostport
from ..net.admission import Admission
from ..net.rate import limiter
from ..net.runtime import Answer, FilePart, Link, Policy, Server
from ..protocol import Data, EndOfMessage, Event, Request
from ..protocol import swarm as sp
from .storage import Library, PieceFile

log = logging.getLogger(__name__)


class PieceServer:
    """Serves ``library`` on a TCP port.

    Args:
        library: the files (and verified pieces) that may be served.
        max_uploads: connections served at once (upload slots); more get 503.
        rate_limit: bytes per second for all uploads together, or None.
    """

    def __init__(self, library: Library, *, max_uploads: int = limits.SWARM_MAX_UPLOADS,
                 rate_limit: float | None = None) -> None:
        self.library = library
        self.throttle = limiter(rate_limit)
        # Connections past max_uploads are accepted only to be told 503; past twice as
        # many they are closed at once.
        policy = Policy("pieces", max_connections=2 * max_uploads,
                        max_per_source=min(2 * max_uploads, limits.MAX_UPLOADS_PER_SOURCE),
                        idle_timeout=limits.SWARM_IDLE_TIMEOUT, keepalive=False)
        self.server = Server(self, sp.server_connection, policy, quick=self.quick)
        self.slots: Admission[Link] = Admission(0, 0)
        self.max_uploads = max_uploads
        self._uploads: dict[Link, _Upload] = {}  # the connections holding a slot
        self._sent: dict[str, SentLog] = {}  # by swarm id: what went to whom (``_news_of_sent``)
        self.bytes_sent = 0
        self.refused = 0  # connections told 503
        self.evicted = 0  # upload slots taken from an address holding more than its share

    @property
    def max_uploads(self) -> int:
        return self.slots.max_total

    @max_uploads.setter
    def max_uploads(self, count: int) -> None:
        self.slots.max_total = count
        self.slots.max_per_source = min(count, limits.MAX_UPLOADS_PER_SOURCE)

    @property
    def uploads(self) -> int:
        """Connections holding an upload slot now."""
        return len(self._uploads)

    async def start(self, host: str | None = None, port: int = 0) -> tuple[str, int]:
        address = await self.server.start(host, port)
        log.info("[Swarm] piece server listening on %s", join_hostport(*address))
        return address

    async def aclose(self) -> None:
        await self.server.aclose()

    # ------------------------------------------------------------------ App
    def connected(self, link: Link) -> None:
        source = link.peername[0]
        if self.slots.count(source) >= self.slots.max_per_source:
            return  # its address holds its share: 503, rather than churn among its own
        verdict = self.slots.admit(link, source, Link.productivity)
        if not verdict.admitted:
            return
        self._uploads[link] = _Upload()
        if verdict.evict is not None:
            log.info("[Swarm] %s: the upload slot of %s goes to %s", verdict.why,
                     verdict.evict.label, link.label)
            self.evicted += 1
            verdict.evict.abort(f"upload slot given to {link.label}")

    def disconnected(self, link: Link) -> None:
        self._free(link)

    def _free(self, link: Link) -> None:
        upload = self._uploads.pop(link, None)
        if upload is not None:
            upload.gone = True  # what it was sent is no longer news (``SentLog``)
            self.slots.remove(link, link.peername[0])

    def error(self, link: Link, status: Status) -> list[Event]:
        return [sp.response(status)[0], EndOfMessage()]

    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        upload = self._uploads.get(link)
        if upload is None:  # no upload slot: told to come back later, then closed
            log.info("[Swarm] busy: 503 to %s", link.label)
            self.refused += 1
            head, _ = sp.busy(limits.BUSY_RETRY_AFTER)
            link.send_now(head, EndOfMessage())
            link.close("busy", linger=True)
            return []
        msg = sp.interpret(request, body)
        if isinstance(msg, sp.GetPiece):
            return self._send_piece(link, msg, upload)
        if isinstance(msg, sp.GetManifest) and (pf := self.library.get(msg.swarm)):
            head, payload = sp.response(Status.OK, pf.manifest.to_bytes())
            return [head, Data(payload), EndOfMessage()]
        status = msg.status if isinstance(msg, sp.Rejected) else (
            Status.NOT_FOUND if isinstance(msg, sp.GetManifest) else Status.BAD_REQUEST)
        return self.error(link, status)

    def quick(self, link: Link, data: bytes) -> list[bytes | FilePart] | None:
        """Every PIECE request of one read (``sp.quick_pieces``, at most a turn's worth)
        answered in one pass: per piece its head and its file range, which the link sends
        with one ``os.sendfile`` each. None (the general path answers, request by request)
        for a link with no upload slot, under a rate limit, or when a piece asked for is
        not one we hold verified."""
        upload = self._uploads.get(link)
        if upload is None or self.throttle is not None:
            return None
        asked = sp.quick_pieces(data, limits.REQUESTS_PER_TURN)
        if asked is None:
            return None
        places = []
        for swarm, index in asked:
            pf = self.library.get(swarm)
            place = pf.locate(index) if pf is not None else None
            if pf is None or place is None:
                return None
            places.append((pf, place))
        parts: list[bytes | FilePart] = []
        for (pf, (handle, offset, length)), (_, index) in zip(places, asked, strict=True):
            have = upload.news(pf)
            full, begun = self._uplink_news(link, upload, pf, index)
            parts += (sp.piece_head_bytes(length, have, full, begun), (handle, offset, length))
            self.bytes_sent += length
        return parts

    def _send_piece(self, link: Link, msg: sp.GetPiece, upload: _Upload) -> Answer:
        pf = self.library.get(msg.swarm)
        place = pf.locate(msg.index) if pf is not None else None
        have = ""
        if pf is not None:  # news of our pieces travels with every answer
            have = upload.news(pf)
        if pf is None or place is None:
            return [sp.response(Status.NOT_FOUND, extra=sp.have_header(have))[0],
                    EndOfMessage()]
        handle, offset, length = place
        full, begun = self._uplink_news(link, upload, pf, msg.index)
        link.send_now(sp.piece_head(length, have, full, begun))
        if self.throttle is not None:
            return self._send_paced(link, handle, offset, length)
        sent = link.sendfile_now(handle, offset, length)  # most often the whole piece
        if sent == length:
            self.bytes_sent += length
            return [EndOfMessage()]
        return self._send_rest(link, handle, offset + sent, length - sent, length)

    def _full(self, link: Link, upload: _Upload, pf: PieceFile) -> bool:
        """Whether answers about ``pf`` say ``Uplink: full``: a seeder of it said so to us,
        or we seed it and the kernel says the network limits this connection's sending:
        once it has had bytes to send for ``limits.UPLINK_JUDGED_AFTER``, under
        ``limits.UPLINK_RECEIVER_SHARE`` of that time waited on the receiver's window
        (``Link.send_times``). Judged once per connection (a ``getsockopt`` per answer
        until then); no account (not Linux): never full, and the leader keeps the upload
        (``picker``, rule 4)."""
        if not pf.uplink_full and not upload.judged and pf.complete:
            times = link.send_times()
            if times is None or times.busy >= limits.UPLINK_JUDGED_AFTER:
                upload.judged = True
                if times is not None and times.receiver < (
                        limits.UPLINK_RECEIVER_SHARE * times.busy):
                    log.info("[Swarm] the network limits the upload to %s (of %.2f s "
                             "sending, %.2f s waited on the receiver): Uplink: full",
                             link.label, times.busy, times.receiver)
                    pf.uplink_full = True
        return pf.uplink_full

    def _uplink_news(self, link: Link, upload: _Upload, pf: PieceFile,
                     index: int) -> tuple[bool, str]:
        """For an answer to ``upload`` with piece ``index`` of ``pf``: whether it says
        ``Uplink: full`` (``_full``), and then its Sent text (``_news_of_sent``)."""
        full = self._full(link, upload, pf)
        return full, self._news_of_sent(upload, pf, index) if full else ""

    def _news_of_sent(self, upload: _Upload, pf: PieceFile, index: int) -> str:
        """The Sent text for an answer to ``upload`` with piece ``index``: the pieces begun
        for other connections that it was not told of (``SentLog``); ``index`` is then
        logged as begun for it. Not at all when we do not hold every piece: only a
        seeder's first copies are spared so (``picker``, rule 1)."""
        if not pf.complete:
            return ""
        swarm, now = pf.manifest.id, time.monotonic()
        sent = self._sent.get(swarm)
        if sent is None:
            if len(self._sent) >= len(self.library.files):  # forget withdrawn swarms'
                self._sent = {k: v for k, v in self._sent.items() if k in self.library.files}
            sent = self._sent[swarm] = SentLog()
        mask, upload.sent_seen[swarm] = sent.news(upload, upload.sent_seen.get(swarm, 0), now)
        sent.add(index, upload, now)
        return sp.news(mask, 0)[0]

    async def _send_rest(self, link: Link, handle: BinaryIO, offset: int, count: int,
                         length: int) -> None:
        """The rest of a piece the socket did not take at once, as it drains."""
        await link.sendfile(handle, offset, count)
        link.send_now(EndOfMessage())
        self.bytes_sent += length

    async def _send_paced(self, link: Link, handle: BinaryIO, offset: int,
                          length: int) -> None:
        """A piece in small runs, each when the upload limit allows: the downloader sees
        steady progress (``roster.judge``)."""
        assert self.throttle is not None
        for at in range(offset, offset + length, self.throttle.run):
            run = min(self.throttle.run, offset + length - at)
            await self.throttle.take(run)
            await link.sendfile(handle, at, run)
            link.flush()  # now, not corked with the next runs (a run fits in the cork)
            await link.drain()  # and no further run for one who does not read
        link.send_now(EndOfMessage())
        self.bytes_sent += length


class SentLog:
    """The pieces of one swarm a seeder began sending, oldest first, and to which
    connection: what its answers tell each connection of the others' (the Sent header)
    while they are fresh, ``limits.SENT_SECONDS``. Entries are numbered from 0 in the order
    they came; each connection keeps the number of the first it was not told of.

    Budgets: a piece already logged within the window for a connection still open is not
    logged again (asking for it anew does not prolong its news); a connection has at most
    ``limits.MAX_SENT_PER_CONNECTION`` entries within the window (one that asks for many
    pieces and reads none names few); a closed connection's entries are no longer told;
    at most twice ``limits.MAX_SENT_LOG`` entries are held, trimmed in one cut."""

    __slots__ = ("_entries", "_first", "_latest")

    def __init__(self) -> None:
        self._entries: list[tuple[float, int, _Upload]] = []  # (when, piece, to whom)
        self._first = 0  # the number of _entries[0]
        # piece -> (when, for whom) it was last logged: not again within the window,
        # unless that connection closed
        self._latest: dict[int, tuple[float, _Upload]] = {}

    def add(self, index: int, to: _Upload, now: float) -> None:
        fresh = now - limits.SENT_SECONDS
        last = self._latest.get(index)
        if last is not None and last[0] >= fresh and not last[1].gone \
                or not to.may_log(now):
            return
        self._latest[index] = (now, to)
        entries = self._entries
        entries.append((now, index, to))
        if len(entries) > 2 * limits.MAX_SENT_LOG or entries[0][0] < now - 2 * limits.SENT_SECONDS:
            cut = max(self._fresh_from(fresh), len(entries) - limits.MAX_SENT_LOG)
            del entries[:cut]
            self._first += cut
            self._latest = {piece: (when, who) for when, piece, who in entries}

    def news(self, to: _Upload, since: int, now: float) -> tuple[int, int]:
        """(the pieces begun within ``limits.SENT_SECONDS`` of ``now`` for connections
        other than ``to`` and still open, from entry ``since`` on (past the end: from
        the first fresh one, as for a connection not yet told any); the entry to start
        from next time)."""
        end = self._first + len(self._entries)
        start = self._fresh_from(now - limits.SENT_SECONDS)
        if since <= end:
            start = max(start, since - self._first)
        mask = 0
        for _, index, who in self._entries[start:]:
            if who is not to and not who.gone:
                mask |= 1 << index
        return mask, end

    def _fresh_from(self, fresh: float) -> int:
        """The position of the first entry logged at ``fresh`` or later."""
        return bisect.bisect_left(self._entries, fresh, key=itemgetter(0))


class _Upload:
    """One connection holding an upload slot: per swarm, the pieces it was told of (the
    Have header) and the first entry of the swarm's ``SentLog`` it was not told of;
    whether its sending was judged (``PieceServer._full``); when its latest ``SentLog``
    entries were logged; and whether it is closed."""

    __slots__ = ("told", "sent_seen", "judged", "logged", "gone")

    def __init__(self) -> None:
        self.told: dict[str, int] = {}
        self.sent_seen: dict[str, int] = {}
        self.judged = False
        self.logged: deque[float] = deque()
        self.gone = False

    def may_log(self, now: float) -> bool:
        """Whether a piece begun for it may go in a ``SentLog`` at ``now`` (at most
        ``limits.MAX_SENT_PER_CONNECTION`` within ``limits.SENT_SECONDS``); counted if so."""
        logged = self.logged
        while logged and logged[0] < now - limits.SENT_SECONDS:
            logged.popleft()
        if len(logged) >= limits.MAX_SENT_PER_CONNECTION:
            return False
        logged.append(now)
        return True

    def news(self, pf: PieceFile) -> str:
        """The Have text for an answer about ``pf`` (``sp.news``), then counted as told."""
        swarm = pf.manifest.id
        have, covered = sp.news(pf.have, self.told.get(swarm, 0))
        self.told[swarm] = self.told.get(swarm, 0) | covered
        return have
