"""Who gets our upload slots: BEP 3's tit-for-tat with an optimistic unchoke, as pure code.

Strategy: the choker is told what happens (peers come and go, their interest, the bytes
each side moved, the time) and answers one question, ``rechoke(now)``: which peers to
unchoke now. No clock and no I/O, so it is tested as a state machine.

- Every ``BT_RECHOKE_INTERVAL`` the regular slots (all but one) go to the interested peers
  that gave us the most in the last interval (tit-for-tat; when we seed, nobody gives us
  anything, so to those we gave the most, which keeps the fastest downloaders busy, as
  mainline and libtorrent's "fastest upload" seeding choker do).
- Slots are shared fairly between source addresses: peers are taken in rounds, the best
  peer of each address in the first round, the second best in the next, so one address
  with many connections gets no more than its share while others want slots.
- One slot is optimistic: a random interested peer (an address chosen at random first,
  then one of its peers), moved every ``BT_OPTIMISTIC_INTERVAL``, so that newcomers with
  nothing to offer yet get a start and we discover better partners.
- Anti-snubbing: a peer we are interested in that sent us no block for ``BT_SNUB_TIME``
  loses its regular slot (only the optimistic slot may reach it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from .. import limits


@dataclass(slots=True)
class _Peer:
    address: str
    since: float  # when it connected, or when it last sent us a block
    interested: bool = False  # it wants our pieces
    wanted: bool = False  # we want its pieces
    received: int = 0  # bytes it sent us this interval
    sent: int = 0  # bytes we sent it this interval
    rate: float = 0.0  # of the last interval: received, or sent when we seed


@dataclass(frozen=True, slots=True)
class Rechoke:
    """The outcome of ``Choker.rechoke``: send ``unchoke`` and ``choke`` to these peers."""

    unchoke: frozenset[Hashable]
    choke: frozenset[Hashable]
    unchoked: frozenset[Hashable] = field(default_factory=frozenset)  # all now unchoked


class Choker:
    """Tit-for-tat with optimistic unchoke over the peers of one torrent.

    Args:
        slots: upload slots in all, the optimistic one included.
        rng: the random source of the optimistic unchoke (seeded in tests).
    """

    def __init__(self, slots: int = limits.BT_UPLOAD_SLOTS, *,
                 rng: random.Random | None = None) -> None:
        self.slots = max(slots, 1)
        self.seeding = False
        self._rng = rng or random.Random()
        self._peers: dict[Hashable, _Peer] = {}
        self._unchoked: frozenset[Hashable] = frozenset()
        self._optimistic: Hashable | None = None
        self._optimistic_at = float("-inf")
        self._last: float | None = None  # the last rechoke

    # ------------------------------------------------------------------- what happens
    def add(self, peer: Hashable, address: str, now: float) -> None:
        self._peers[peer] = _Peer(address, now)

    def remove(self, peer: Hashable) -> None:
        self._peers.pop(peer, None)
        self._unchoked -= {peer}
        if self._optimistic == peer:
            self._optimistic = None

    def interest(self, peer: Hashable, *, theirs: bool | None = None,
                 ours: bool | None = None) -> None:
        """The peer is (not) interested in our pieces; we are (not) in its pieces."""
        state = self._peers[peer]
        if theirs is not None:
            state.interested = theirs
        if ours is not None:
            state.wanted = ours

    def received(self, peer: Hashable, nbytes: int, now: float) -> None:
        """The peer sent us a block of ``nbytes``."""
        state = self._peers[peer]
        state.received += nbytes
        state.since = now

    def sent(self, peer: Hashable, nbytes: int) -> None:
        self._peers[peer].sent += nbytes

    @property
    def unchoked(self) -> frozenset[Hashable]:
        return self._unchoked

    def due(self, now: float) -> bool:
        """Whether a rechoke is due (every ``BT_RECHOKE_INTERVAL``)."""
        return self._last is None or now - self._last >= limits.BT_RECHOKE_INTERVAL

    def snubbed(self, peer: Hashable, now: float) -> bool:
        state = self._peers[peer]
        return state.wanted and now - state.since >= limits.BT_SNUB_TIME

    # ------------------------------------------------------------------------ deciding
    def rechoke(self, now: float) -> Rechoke:
        """Decide the unchoked set now (call every ``BT_RECHOKE_INTERVAL``, and when a
        peer's interest changes if you want a faster answer)."""
        last = self._last
        span = limits.BT_RECHOKE_INTERVAL if last is None else max(now - last, 1.0)
        self._last = now
        for state in self._peers.values():
            state.rate = (state.sent if self.seeding else state.received) / span
            state.received = state.sent = 0
        regular = self._regular(now)
        self._optimistic = self._pick_optimistic(regular, now)
        chosen = frozenset(regular + ([self._optimistic] if self._optimistic is not None
                                      else []))
        out = Rechoke(chosen - self._unchoked, self._unchoked - chosen, chosen)
        self._unchoked = chosen
        return out

    def _candidates(self) -> list[Hashable]:
        return [p for p, s in self._peers.items() if s.interested]

    def _regular(self, now: float) -> list[Hashable]:
        """The best peers, in rounds over source addresses, for all slots but one."""
        ranked = sorted((p for p in self._candidates() if not self.snubbed(p, now)),
                        key=lambda p: -self._peers[p].rate)
        return _fair_take(ranked, self._address, self.slots - 1)

    def _address(self, peer: Hashable) -> str:
        return self._peers[peer].address

    def _pick_optimistic(self, regular: list[Hashable], now: float) -> Hashable | None:
        current = self._optimistic
        keep = (current is not None and current in self._peers and current not in regular
                and self._peers[current].interested
                and now - self._optimistic_at < limits.BT_OPTIMISTIC_INTERVAL)
        if keep:
            return current
        left = [p for p in self._candidates() if p not in regular]
        if not left:
            return None
        self._optimistic_at = now
        addresses = sorted({self._address(p) for p in left})
        address = self._rng.choice(addresses)
        return self._rng.choice([p for p in left if self._address(p) == address])


def _fair_take(ranked: Iterable[Hashable], address_of: Callable[[Hashable], str],
               count: int) -> list[Hashable]:
    """Up to ``count`` of ``ranked`` (best first), taken in rounds: each round the best
    remaining peer of every address, best first."""
    rounds: list[list[Hashable]] = []
    seen: dict[str, int] = {}
    for peer in ranked:
        address = address_of(peer)
        depth = seen.get(address, 0)
        seen[address] = depth + 1
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(peer)
    return [peer for level in rounds for peer in level][:max(count, 0)]
