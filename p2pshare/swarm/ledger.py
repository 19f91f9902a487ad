"""The tracker's books: who claims which address, and whose manifests it holds.

Strategy: every address claim and every swarm membership is entered under the connection
that made it (and that connection's source address), so that ``leave`` gives back all of
it when the connection ends, and each budget is a counter compared before a change:
``check_join`` raises ``OverBudget`` and changes nothing, ``join`` then enters it. A
claim is counted once per connection however many of its swarms use it (a reference
count per address), and a manifest once per source address however many of its
connections are in that swarm, and once in all. Pure bookkeeping: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import limits
from ..errors import OverBudget
from ..host import join_hostport

ClaimedAddress = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TrackerBudget:
    """What one connection, one source address and everyone may make the tracker hold."""

    claims_per_connection: int = field(
        default_factory=lambda: limits.MAX_CLAIMS_PER_CONNECTION)
    claims_per_source: int = field(default_factory=lambda: limits.MAX_TRACKER_CLAIMS_PER_SOURCE)
    claims_in_all: int = field(default_factory=lambda: limits.MAX_TRACKER_CLAIMS)
    swarms_per_connection: int = field(default_factory=lambda: limits.MAX_SWARMS_PER_PEER)
    bytes_per_source: int = field(
        default_factory=lambda: limits.MAX_MANIFEST_BYTES_PER_SOURCE)
    bytes_in_all: int = field(default_factory=lambda: limits.MAX_MANIFEST_BYTES)
    files_listed: int = field(default_factory=lambda: limits.MAX_FILES_LISTED)


@dataclass(eq=False)
class _Account:
    source: str
    claims: dict[ClaimedAddress, int] = field(default_factory=dict)  # address -> swarms using it
    swarms: set[str] = field(default_factory=set)


class Ledger:
    """Claims and manifest bytes, per connection, per source address and in all."""

    def __init__(self, budget: TrackerBudget) -> None:
        self.budget = budget
        self._holder: dict[ClaimedAddress, object] = {}
        self._accounts: dict[object, _Account] = {}
        self._source_claims: dict[str, int] = {}
        self._source_swarms: dict[str, dict[str, int]] = {}  # swarm -> its connections in it
        self._source_bytes: dict[str, int] = {}
        self._sizes: dict[str, int] = {}  # manifest bytes of every swarm held
        self.manifest_bytes = 0

    @property
    def claims(self) -> int:
        """Addresses claimed in all."""
        return len(self._holder)

    def claims_from(self, source: str) -> int:
        return self._source_claims.get(source, 0)

    def bytes_from(self, source: str) -> int:
        """Manifest bytes of the swarms that connections from ``source`` are in."""
        return self._source_bytes.get(source, 0)

    def claims_of(self, owner: object) -> int:
        account = self._accounts.get(owner)
        return len(account.claims) if account else 0

    def holder(self, address: ClaimedAddress, default: object) -> object:
        """The connection that claims ``address``, or ``default`` if none does."""
        return self._holder.get(address, default)

    def check_join(self, owner: object, source: str, swarm: str, size: int,
                   address: ClaimedAddress, old: ClaimedAddress | None, *, new_swarm: bool) -> None:
        """Raises OverBudget if ``owner`` may not announce ``swarm`` (of ``size`` manifest
        bytes) at ``address`` (instead of ``old``)."""
        account = self._accounts.get(owner) or _Account(source)
        b = self.budget
        if swarm not in account.swarms:
            if len(account.swarms) >= b.swarms_per_connection:
                raise OverBudget(f"a connection may announce {b.swarms_per_connection} swarms")
            if swarm not in self._source_swarms.get(account.source, {}) and \
                    self.bytes_from(account.source) + size > b.bytes_per_source:
                raise OverBudget(f"{account.source} holds its {b.bytes_per_source} "
                                 "manifest bytes")
        if new_swarm and self.manifest_bytes + size > b.bytes_in_all:
            raise OverBudget(f"the tracker holds its {b.bytes_in_all} manifest bytes",
                             everyone=True)
        if address not in account.claims:
            self._check_claim(account, address, old)

    def _check_claim(self, account: _Account, address: ClaimedAddress,
                     old: ClaimedAddress | None) -> None:
        b = self.budget
        freed = old is not None and account.claims.get(old) == 1
        if len(account.claims) - freed >= b.claims_per_connection:
            raise OverBudget(f"a connection may claim {b.claims_per_connection} addresses; "
                             f"{join_hostport(*address)} is one more")
        if self.claims_from(account.source) - freed >= b.claims_per_source:
            raise OverBudget(f"{account.source} holds its {b.claims_per_source} addresses")
        if self.claims - freed >= b.claims_in_all:
            raise OverBudget(f"the tracker holds its {b.claims_in_all} addresses",
                             everyone=True)

    def join(self, owner: object, source: str, swarm: str, size: int, address: ClaimedAddress,
             old: ClaimedAddress | None) -> None:
        """Enter what ``check_join`` allowed."""
        account = self._accounts.setdefault(owner, _Account(source))
        if swarm not in self._sizes:
            self._sizes[swarm] = size
            self.manifest_bytes += size
        if swarm not in account.swarms:
            account.swarms.add(swarm)
            self._enter_swarm(account.source, swarm)
        if address != old:
            self._claim(owner, account, address)
            if old is not None:
                self._release(account, old)

    def _enter_swarm(self, source: str, swarm: str) -> None:
        held = self._source_swarms.setdefault(source, {})
        held[swarm] = held.get(swarm, 0) + 1
        if held[swarm] == 1:
            self._source_bytes[source] = self.bytes_from(source) + self._sizes[swarm]

    def _leave_swarm(self, source: str, swarm: str) -> None:
        held = self._source_swarms[source]
        held[swarm] -= 1
        if held[swarm]:
            return
        del held[swarm]
        if not held:
            del self._source_swarms[source]
        left = self._source_bytes.pop(source) - self._sizes[swarm]
        if left:
            self._source_bytes[source] = left

    def _claim(self, owner: object, account: _Account, address: ClaimedAddress) -> None:
        if address not in account.claims:
            self._holder[address] = owner
            self._add_claims(account.source, 1)
        account.claims[address] = account.claims.get(address, 0) + 1

    def _release(self, account: _Account, address: ClaimedAddress) -> None:
        account.claims[address] -= 1
        if not account.claims[address]:
            del account.claims[address], self._holder[address]
            self._add_claims(account.source, -1)

    def _add_claims(self, source: str, n: int) -> None:
        total = self.claims_from(source) + n
        if total:
            self._source_claims[source] = total
        else:
            del self._source_claims[source]

    def leave(self, owner: object) -> set[str]:
        """Release everything ``owner`` held; returns the swarms it was in."""
        account = self._accounts.pop(owner, None)
        if account is None:
            return set()
        for address in account.claims:
            del self._holder[address]
        if account.claims:
            self._add_claims(account.source, -len(account.claims))
        for swarm in account.swarms:
            self._leave_swarm(account.source, swarm)
        return account.swarms

    def forget(self, swarm: str, size: int) -> None:
        """``swarm`` has no member left: its manifest is dropped."""
        del self._sizes[swarm]
        self.manifest_bytes -= size
