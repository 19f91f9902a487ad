"""The BitTorrent piece server: serves the verified pieces of our torrents to peers.

Strategy: on the one server runtime (``net.runtime``), as the swarm's piece server: the
runtime accepts, admits (caps in all and per source address), sweeps deadlines (the
handshake must come within ``limits.BT_HANDSHAKE_TIMEOUT``, then a silent connection is
closed after ``limits.BT_IDLE_TIMEOUT``; keep-alives count) and cuts off a peer that takes
none of our bytes. Its links are ``net.streamlink.StreamLink``s: their bytes go to one
sans-IO ``BtConnection`` each, and this module answers the events: the handshake (we
serve only torrents we hold, by their v1 or truncated v2 info-hash), the extension
handshake (BEP 10: ``ut_metadata`` with our metadata size, so magnet links work), our
pieces (``HaveAll`` with the fast extension, else a bitfield), requests, metadata
requests (BEP 9) and hash requests (BEP 52: piece-layer hashes with their proof), and
tells each peer of the others that accept connections (PEX, BEP 11). Blocks go out after
every other answer to the same read, and a peer that asks for piece layers gets a block
after the layer hashes of its piece (or ``limits.BT_LAYER_WAIT`` after the first block of
its file was held): the layer leaves first, as from libtorrent, so each block can be
checked as it comes.

Upload slots: the choker (``bt.choker``: tit-for-tat, which for a seed means the peers we
send the most, with an optimistic unchoke and fair shares between source addresses) decides
who is unchoked, every ``limits.BT_RECHOKE_INTERVAL`` and whenever a peer's interest
changes or a peer leaves; a peer that asks for nothing falls behind those that do. A
request from a choked peer is rejected (BEP 6) or ignored, a
request beyond a piece, for a piece we lack or of more than 16 KiB is rejected, and the
codec bounds how many may be outstanding. While a peer does not read what we send, we stop
reading its requests (the runtime pauses reading), so what we hold for it stays bounded.
An optional rate limit paces every upload together (``net.rate``): requests then wait in
the link's queue and one task per link sends them as the limit allows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial

from .. import limits, wirelog
from ..errors import RemoteProtocolError, Status
from ..host import join_hostport, plain_ip
from ..net.origin import ANYWHERE, Origin
from ..net.rate import limiter
from ..net.runtime import Answer, Link, Policy, Server
from ..net.streamlink import StreamLink
from ..protocol import Event, Request
from ..protocol import bt_events as w
from ..protocol import swarm as sp
from ..protocol._events import ConnectionClosed, _Sentinel
from ..protocol.bt_wire import NEED_DATA, BtConnection, BtRole
from .choker import Choker
from .layout import bitfield_of, serving_geometry
from .metadata import metadata_answer
from .peer import bt_wire_text
from .store import TorrentStore

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Upload:
    """One peer connection's state on our side."""

    conn: BtConnection
    store: TorrentStore | None = None
    fast: bool = False  # the peer speaks the fast extension (BEP 6)
    unchoked: bool = False
    interested: bool = False
    queue: deque[w.BtRequest] = field(default_factory=deque)
    sending: bool = False  # a task sends the queue (rate-limited)
    listening: int | None = None  # the port the peer accepts connections on (BEP 10 ``p``)
    pex: bool = False  # it reads ut_pex (BEP 11)
    told: set[tuple[str, int]] = field(default_factory=set)  # peers it heard of from us
    hello: bytes = b""  # we connected, and sent our handshake for this info-hash
    local: tuple[str, int] | None = None  # where a link we made leaves from
    # Layers first (``BtServer._held_for``): it asked us for a piece layer; the pieces whose
    # layer hashes it has been sent, or whose file's wait is over (a mask of the piece
    # space); when a block of each other file was first held (at most one per file); the
    # requests held; the timer that ends the first hold.
    asks_layers: bool = False
    proven: int = 0
    held_since: dict[bytes, float] = field(default_factory=dict)
    waiting: deque[w.BtRequest] = field(default_factory=deque)
    wake: asyncio.TimerHandle | None = None


def _upgraded(theirs: w.Handshake, store: TorrentStore) -> w.Handshake:
    """``theirs`` as we answer it: a hybrid torrent asked for by its v1 info-hash with the
    v2 bit set is answered by its truncated v2 info-hash, the upgrade to v2 (BEP 52), as
    libtorrent answers. libtorrent 2.0 needs it: told of us by a tracker's v1 answer, then
    its v2 answer, it expects the v2 name while its handshake (sent with the v1 name) is
    under way, and drops an answer with the v1 name as "invalid info-hash"."""
    v2 = store.torrent.v2_hash
    if v2 is None or not theirs.v2 or theirs.info_hash == v2[:20]:
        return theirs
    return w.Handshake(v2[:20], theirs.peer_id, theirs.reserved)


class BtServer:
    """Serves the torrents added to it on one TCP port.

    Args:
        peer_id: our 20-byte peer id.
        max_uploads: peers unchoked at once (the optimistic one included).
        rate_limit: bytes per second for every upload together, or None.
    """

    def __init__(self, peer_id: bytes, *, max_uploads: int = limits.BT_UPLOAD_SLOTS,
                 rate_limit: float | None = None) -> None:
        self.peer_id = peer_id
        self.choker = Choker(max_uploads)
        self.choker.seeding = True  # we only upload on these links: rank by what we send
        self.throttle = limiter(rate_limit)
        self.torrents: dict[bytes, TorrentStore] = {}  # by the 20 bytes of a handshake
        self.uploads: dict[Link, _Upload] = {}
        self.bytes_sent = 0
        self.address: tuple[str, int] | None = None  # where we listen
        self.dialling: set[tuple[str, int]] = set()  # connections of ours under way
        self.selves: set[tuple[str, int]] = set()  # addresses that turned out to be us
        policy = Policy("bittorrent", max_connections=limits.BT_MAX_CONNECTIONS,
                        max_per_source=limits.BT_MAX_CONNECTIONS_PER_SOURCE,
                        idle_timeout=limits.BT_IDLE_TIMEOUT,
                        first_request_timeout=limits.BT_HANDSHAKE_TIMEOUT)
        self.server = Server(self, sp.server_connection, policy, link_class=StreamLink)
        self.origin = ANYWHERE  # where our connections leave from: set by ``start``

    def add(self, store: TorrentStore) -> None:
        """Serve ``store``'s verified pieces (its ``have``, read at each request)."""
        for digest in (store.torrent.v1_hash, store.torrent.v2_hash):
            if digest is not None:
                self.torrents[digest[:20]] = store

    def have(self, store: TorrentStore, index: int) -> None:
        """A piece of ``store`` was just verified: tell the peers connected for it."""
        for link, up in self.uploads.items():
            if up.store is store and not link.closing:
                assert isinstance(link, StreamLink)
                self._send(link, up, w.BtHave(index))

    async def start(self, host: str | None = None, port: int = 0) -> tuple[str, int]:
        address = self.address = await self.server.start(host, port)
        self.origin = Origin(self.server.hosts)
        self.server.tasks.spawn(self._rechoke_every_interval())
        log.info("[BT] listening for peers on %s", join_hostport(*address))
        return address

    async def aclose(self) -> None:
        await self.server.aclose()

    # ------------------------------------------------------------------ App
    def connected(self, link: Link) -> None:
        assert isinstance(link, StreamLink)
        self.uploads[link] = _Upload(BtConnection(BtRole.ACCEPTOR))
        link.receiver = partial(self._received, link)

    def disconnected(self, link: Link) -> None:
        up = self.uploads.pop(link, None)
        if up is not None and up.wake is not None:
            up.wake.cancel()
        if up is not None and up.store is not None:
            self.choker.remove(link)
            if up.unchoked:
                self._rechoke()

    def request(self, link: Link, request: Request, body: bytes) -> Answer:
        return []  # a byte-stream link hands the App no requests

    def error(self, link: Link, status: Status) -> list[Event]:
        return []

    # ------------------------------------------------------------------ events
    def _received(self, link: StreamLink, data: bytes) -> None:
        up = self.uploads.get(link)
        if up is None:
            return
        if data:
            up.conn.receive_data(data)
        while not (link.closing or link.paused):
            event = up.conn.next_event()
            link.write(up.conn.data_to_send())  # rejects the codec owes
            if isinstance(event, ConnectionClosed):
                link.close("closed by the peer")
                return
            if event is NEED_DATA:
                break
            assert not isinstance(event, _Sentinel)
            if wirelog.enabled():
                wirelog.message(wirelog.RECEIVED, link.label, bt_wire_text(event))
            self._event(link, up, event)
        if self.throttle is None:
            self._serve_queue(link, up)

    def _event(self, link: StreamLink, up: _Upload, event: w.BtEvent) -> None:
        if isinstance(event, w.Handshake):
            self._greet(link, up, event)
        elif up.store is None:
            raise RemoteProtocolError("a message before the handshake")
        elif isinstance(event, w.BtRequest):
            self._requested(link, up, event)
        elif isinstance(event, w.Interested | w.NotInterested):
            up.interested = isinstance(event, w.Interested)
            self.choker.interest(link, theirs=up.interested)
            self._rechoke()
        elif isinstance(event, w.Cancel):
            block = (event.index, event.begin, event.length)
            up.queue, up.waiting = (deque(r for r in q if (r.index, r.begin, r.length) != block)
                                    for q in (up.queue, up.waiting))
        elif isinstance(event, w.ExtendedHandshake):
            up.listening, up.pex = event.p, "ut_pex" in event.m
            self._tell_peers()
        elif isinstance(event, w.MetadataRequest | w.HashRequest):
            answer = metadata_answer(up.store, event)
            self._send(link, up, answer)
            if isinstance(answer, w.Hashes):
                self._layer_sent(link, up, answer)

    def _greet(self, link: StreamLink, up: _Upload, theirs: w.Handshake) -> None:
        store = self.torrents.get(theirs.info_hash)
        if theirs.peer_id == self.peer_id:
            self._met_ourselves(link)
        if store is None or theirs.peer_id == self.peer_id or \
                (up.hello and store is not self.torrents.get(up.hello)):
            link.close("another torrent, or ourselves")
            return
        up.store, up.fast = store, theirs.fast
        theirs = _upgraded(theirs, store)
        up.conn.set_geometry(serving_geometry(store.layout))
        self.choker.add(link, link.peername[0], time.monotonic())
        link.greeted()
        if not up.hello:
            self._send(link, up, self._hello(theirs.info_hash, store))
        if theirs.extended:
            self._send(link, up, up.conn.extended_handshake(
                v=f"p2pshare {_version()}", metadata_size=len(store.torrent.info)))
        count = store.count
        if theirs.fast and store.have == (1 << count) - 1:
            self._send(link, up, w.HaveAll())
        elif theirs.fast and not store.have:
            self._send(link, up, w.HaveNone())
        elif store.have:
            self._send(link, up, w.Bitfield(bitfield_of(store.have, count)))

    def _met_ourselves(self, link: StreamLink) -> None:
        """``link`` is one we accepted from ourselves: the address we dialled is us."""
        for ours, up in self.uploads.items():
            if up.local == link.peername and len(self.selves) < limits.BT_NUMWANT:
                self.selves.add(ours.peername)

    def _hello(self, info_hash: bytes, store: TorrentStore) -> w.Handshake:
        reserved = w.reserved_bits(v2=store.torrent.v2_hash is not None)
        return w.Handshake(info_hash, self.peer_id, reserved)

    def reach(self, peers: list[tuple[str, int]], store: TorrentStore) -> None:
        """Connect to those of ``peers`` (a tracker's answer) we hold no link with, to serve
        them ``store``: a leech that announced before us would otherwise not hear of us
        until its next announce, and some clients dial no one (Transmission on loopback).
        Never ourselves (our listening address, or one where we met our own handshake),
        never a peer linked already (one we dialled, or one that dialled us and told its
        port, BEP 10 ``p``); at most ``limits.BT_NUMWANT`` links of ours at once, each
        admitted by the runtime like an accepted one (its caps in all and per source).
        A dial that fails is tried again when a tracker lists the peer again: the
        tracker's announce interval is its backoff."""
        linked = self._linked()
        for address in peers:
            ours = len(self.dialling) + sum(1 for up in self.uploads.values() if up.hello)
            if ours >= limits.BT_NUMWANT:
                return
            if address in linked or address in self.dialling or address in self.selves \
                    or address == self.address:
                continue
            self.dialling.add(address)
            self.server.tasks.spawn(self._dial(address, store))

    def _linked(self) -> set[tuple[str, int]]:
        """The listening addresses of the peers we hold a link with."""
        linked = set()
        for link, up in self.uploads.items():
            host, port = link.peername[:2]
            if up.hello:
                linked.add((host, port))
            elif up.listening:
                linked.add((host, up.listening))
        return linked

    async def _dial(self, address: tuple[str, int], store: TorrentStore) -> None:
        try:
            await self.connect(address, store)
        except (OSError, TimeoutError) as exc:
            log.info("[BT] cannot reach %s: %s", join_hostport(*address),
                     exc or type(exc).__name__)
        finally:
            self.dialling.discard(address)

    async def connect(self, address: tuple[str, int], store: TorrentStore) -> None:
        """Connect to a peer a tracker listed, to serve it ``store`` (a peer that announced
        before us would not otherwise learn of us until its next announce), from the
        address we listen on if that is one (``origin``). The link is
        the runtime's like any accepted one: the same caps, deadlines and answers; only
        our handshake goes first.

        Raises:
            OSError, TimeoutError: the connection failed.
        """
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(limits.BT_HANDSHAKE_TIMEOUT):
            transport, link = await loop.create_connection(
                lambda: StreamLink(self.server, sp.server_connection()), *address,
                local_addr=await self.origin.local_addr(*address))
        up = self.uploads.get(link)
        if up is None:  # refused by admission
            return
        up.conn = BtConnection(BtRole.INITIATOR)
        local = transport.get_extra_info("sockname")
        up.local = (plain_ip(str(local[0])), int(local[1]))
        up.hello = store.torrent.handshake_hash
        self._send(link, up, self._hello(up.hello, store))

    def _send(self, link: StreamLink, up: _Upload, *events: w.BtEvent) -> None:
        link.write(b"".join(up.conn.send(event) for event in events))
        if wirelog.enabled():
            for event in events:
                wirelog.message(wirelog.SENT, link.label, bt_wire_text(event))

    # ------------------------------------------------------------------ PEX
    def _tell_peers(self) -> None:
        """PEX (BEP 11): tell each peer that reads ut_pex of the other peers of its torrent
        that accept connections, those it has not heard of from us (at most
        ``limits.MAX_PEX_PEERS`` a message; a peer is told of a newcomer when it arrives,
        so a message goes out only when there is news)."""
        reachable = {link: (link.peername[0], up.listening) for link, up in self.uploads.items()
                     if up.listening and not link.closing}
        for link, up in self.uploads.items():
            if not up.pex or link.closing:
                continue
            news = [a for other, a in reachable.items() if other is not link and
                    self.uploads[other].store is up.store and a not in up.told]
            news = news[:limits.MAX_PEX_PEERS]
            if news:
                up.told.update(news)
                v4 = tuple((h, p) for h, p in news if ":" not in h)
                v6 = tuple((h, p) for h, p in news if ":" in h)
                assert isinstance(link, StreamLink)
                self._send(link, up, w.Pex(added=v4, added6=v6))

    # ------------------------------------------------------------------ slots
    def _rechoke(self) -> None:
        """Apply the choker's decision now."""
        decision = self.choker.rechoke(time.monotonic())
        for peer, unchoke in [(p, False) for p in decision.choke] + \
                [(p, True) for p in decision.unchoke]:
            if not isinstance(peer, StreamLink) or peer.closing:
                continue
            link, up = peer, self.uploads.get(peer)
            if up is None:
                continue
            up.unchoked = unchoke
            if not unchoke:
                up.queue.clear()
                up.waiting.clear()
            self._send(link, up, w.Unchoke() if unchoke else w.Choke())

    async def _rechoke_every_interval(self) -> None:
        while True:
            await asyncio.sleep(1.0)  # a periodic check, not synchronisation
            if self.choker.due(time.monotonic()):
                self._rechoke()

    # ------------------------------------------------------------------ blocks
    def _requested(self, link: StreamLink, up: _Upload, req: w.BtRequest) -> None:
        """A request the codec accepted (in range, within budget, not while choked): served
        if we hold the piece, else rejected (or, without BEP 6, ignored)."""
        store = up.store
        assert store is not None
        if not store.have >> req.index & 1:
            if up.fast:
                self._send(link, up, w.RejectRequest(req.index, req.begin, req.length))
            return
        if self._held_for(up, req):
            up.waiting.append(req)
            self._wake_later(link, up)
            return
        up.queue.append(req)
        self._kick(link, up)

    def _kick(self, link: StreamLink, up: _Upload) -> None:
        """Under a rate limit, start the link's task that sends its queue (without one,
        ``_received`` serves the queue once it has answered the rest of a read)."""
        if self.throttle is not None and up.queue and not up.sending:
            up.sending = True
            self.server.tasks.spawn(self._serve_paced(link, up))

    def _serve_queue(self, link: StreamLink, up: _Upload) -> None:
        """The blocks asked for, in order, once every other message of what arrived has
        been answered (``_received``). Stops while the peer does not read
        (``resume_writing`` feeds the link again, which comes back here)."""
        while up.queue and not (link.closing or link.paused):
            self._send_block(link, up, up.queue.popleft())

    # ------------------------------------------------------------------ layers first
    def _held_for(self, up: _Upload, req: w.BtRequest, now: float | None = None) -> float:
        """Seconds the block ``req`` is still held for its file's piece layer, 0 if none.

        A v2 downloader asks for a file's layer (in chunks of 512 hashes, for libtorrent)
        and for blocks of the file together, and checks a block as it comes only if its
        layer came first. libtorrent's seed sends the layer first because its blocks wait
        for a disk read; sent in the order asked, qBittorrent 4.5.2 (libtorrent 2.0.8) put
        a hybrid torrent in its error state in a few percent of our interop runs, each
        time after a piece had arrived whole before its file's layer. So a peer that has
        asked us for a layer (a magnet's downloader; one with the .torrent never asks,
        and never waits) gets a block once it has been sent the layer hashes of its
        piece, or ``limits.BT_LAYER_WAIT`` after the first block of its file was held."""
        if not up.asks_layers or up.proven >> req.index & 1 or up.store is None:
            return 0.0
        place = up.store.layout.v2_place(req.index)
        root = place[0].root if place is not None else None
        if root is None or root not in up.store.layers:
            return 0.0  # a pad, or a file of one piece: no layer to ask for
        now = time.monotonic() if now is None else now
        left = up.held_since.setdefault(root, now) + limits.BT_LAYER_WAIT - now
        if left > 0:
            return left
        up.proven |= up.store.layout.mask_of(up.store.layout.by_root[root])
        return 0.0

    def _layer_sent(self, link: StreamLink, up: _Upload, sent: w.Hashes) -> None:
        """``sent`` (an answer at the piece layer, so within its file) proves its pieces
        of every file with its root: their held blocks go."""
        store = up.store
        assert store is not None
        up.asks_layers = True
        for f in store.layout.by_root.get(sent.pieces_root, []):
            first = store.layout.pieces_of(f).start + sent.index
            up.proven |= ((1 << sent.length) - 1) << first & store.layout.mask_of([f])
        self._release(up)
        self._kick(link, up)

    def _release(self, up: _Upload) -> None:
        """Held blocks whose layer has been sent or whose wait is over join the queue."""
        now = time.monotonic()
        still: deque[w.BtRequest] = deque()
        for req in up.waiting:
            (still if self._held_for(up, req, now) else up.queue).append(req)
        up.waiting = still

    def _wake_later(self, link: StreamLink, up: _Upload) -> None:
        """A timer for when the first of the holds ends (one per link)."""
        if up.wake is None and up.waiting and not link.closing:
            now = time.monotonic()
            left = min(self._held_for(up, req, now) for req in up.waiting) or 0.0
            up.wake = asyncio.get_running_loop().call_later(left, self._woken, link, up)

    def _woken(self, link: StreamLink, up: _Upload) -> None:
        """A hold ended: what it released goes as after a read (``_received``)."""
        up.wake = None
        if link.closing:
            return
        self._release(up)
        self._kick(link, up)
        link.carry_on()
        self._wake_later(link, up)

    def _send_block(self, link: StreamLink, up: _Upload, req: w.BtRequest) -> None:
        """The block by its 13-byte head and the runtime's ``sendfile_now`` (a 16 KiB
        block is corked with what is waiting, and leaves with it in one write)."""
        store = up.store
        assert store is not None
        head = up.conn.send(w.PieceHeader(req.index, req.begin, req.length))
        if not head:  # cancelled meanwhile
            return
        link.write(head)
        start = req.index * store.layout.piece_length + req.begin
        for run in store.layout.runs(start, req.length):
            if run.file is None:
                link.write(bytes(run.length))
                continue
            handle = store.handles[run.file]
            sent = link.sendfile_now(handle, run.start, run.length)
            if sent != run.length:  # the wire log is on, or the socket took part of it
                link.write(os.pread(handle.fileno(), run.length - sent, run.start + sent))
        link.flush()
        self.bytes_sent += req.length
        self.choker.sent(link, req.length)

    async def _serve_paced(self, link: StreamLink, up: _Upload) -> None:
        assert self.throttle is not None
        try:
            while up.queue and not link.closing:
                req = up.queue.popleft()
                await self.throttle.take(req.length)
                await link.drain()
                self._send_block(link, up, req)
        finally:
            up.sending = False


def _version() -> str:
    from .. import __version__
    return __version__
