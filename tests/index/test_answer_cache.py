"""The index server's cache of quick LOOKUP answers never serves a stale answer.

Random ADDs, re-ADDs, REMOVEs and peers leaving, through the store as the server drives
it, interleaved with quick LOOKUPs; after every step each cached answer must be what the
general path would encode from the index as it is now.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from p2pshare import limits
from p2pshare.index.server import IndexServer
from p2pshare.protocol import ci

RFCS = st.integers(1, 6)
OWNERS = st.sampled_from(["a", "b", "c"])
PORTS = st.sampled_from([1, 2])


def lookup(rfc: int) -> bytes:
    return f"LOOKUP RFC {rfc} P2P-CI/1.0\r\nHost: h\r\nPort: 9\r\n\r\n".encode()


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.server = IndexServer()
        self.index = self.server.index

    def fresh(self, rfc: int) -> bytes:
        return ci.lookup_answer([r.to_line() for r in self.index.lookup(rfc)])

    @rule(owner=OWNERS, rfc=RFCS, port=PORTS, title=st.sampled_from(["T", "Other title"]))
    def add(self, owner: str, rfc: int, port: int, title: str) -> None:
        self.server._add(owner, rfc, title, f"host-{owner}", port)

    @rule(owner=OWNERS, rfc=RFCS, port=PORTS)
    def remove(self, owner: str, rfc: int, port: int) -> None:
        self.index.remove(owner, rfc, f"host-{owner}", port)

    @rule(owner=OWNERS)
    def leave(self, owner: str) -> None:
        self.index.drop_owner(owner)

    @rule(rfc=RFCS)
    def quick_lookup(self, rfc: int) -> None:
        assert self.server.quick(lookup(rfc)) == self.fresh(rfc)

    @invariant()
    def every_cached_answer_is_current(self) -> None:
        for rfc, answer in self.server._answers.items():
            assert answer == self.fresh(rfc), rfc
        assert self.server._cached == sum(map(len, self.server._answers.values()))


TestCache = CacheMachine.TestCase
TestCache.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def test_the_cache_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most LOOKUP_CACHE_BYTES in all; an answer over LOOKUP_CACHE_MAX_ANSWER (an RFC
    with many holders) is never kept; every answer is still right."""
    monkeypatch.setattr(limits, "LOOKUP_CACHE_BYTES", 100)
    monkeypatch.setattr(limits, "LOOKUP_CACHE_MAX_ANSWER", 60)
    server = IndexServer()
    for rfc in range(1, 8):
        server.index.add("a", rfc, "T", "h", 1)
        assert server.quick(lookup(rfc)) == ci.lookup_answer([f"RFC {rfc} T h 1".encode()])
        assert sum(map(len, server._answers.values())) == server._cached <= 100
    for port in range(2, 6):  # RFC 7 now has five holders: a 117-byte answer
        server.index.add("a", 7, "T", "h", port)
    many = server.quick(lookup(7))
    assert many is not None and len(many) > 60 and 7 not in server._answers
    assert many == ci.lookup_answer([r.to_line() for r in server.index.lookup(7)])


def test_the_cache_counts_its_bytes_through_changes() -> None:
    server = IndexServer()
    for rfc in range(1, 4):
        server.index.add("a", rfc, "T", "h", 1)
        server.quick(lookup(rfc))
    server.index.drop_owner("a")
    assert server._answers == {} and server._cached == 0
