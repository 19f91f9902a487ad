"""The RS's peer list: cookies, TTL from last contact, 30-day counts, active set; a model."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from p2pshare import limits
from p2pshare.protocol.di import PeerAddr
from p2pshare.registry.store import PeerRecord, Refusal, Registry

from .clock import FakeClock

DAY = 24 * 3600.0


def registry() -> tuple[Registry, FakeClock]:
    clock = FakeClock()
    return Registry(clock=clock, wall=clock.wall), clock


def cookie_of(result: PeerRecord | Refusal) -> int:
    assert isinstance(result, PeerRecord)
    return result.cookie


def test_first_registration_gets_a_new_cookie_and_the_seven_fields() -> None:
    reg, clock = registry()
    a = cookie_of(reg.register("a", 5000, None))
    b = cookie_of(reg.register("b", 5001, None))
    assert a != b
    view = reg.view(a)
    assert view is not None
    assert (view.hostname, view.cookie, view.active, view.ttl, view.port, view.registrations) \
        == ("a", a, True, 7200, 5000, 1)
    assert view.last_registered.timestamp() == clock.wall()


def test_ttl_is_computed_from_the_last_contact() -> None:
    reg, clock = registry()
    a = cookie_of(reg.register("a", 5000, None))
    clock.advance(100)
    assert reg.view(a).ttl == 7100  # type: ignore[union-attr]
    assert reg.keep_alive(a) is None
    assert reg.view(a).ttl == 7200  # type: ignore[union-attr]
    clock.advance(7199.5)
    assert reg.view(a).active  # type: ignore[union-attr]
    clock.advance(0.5)
    view = reg.view(a)
    assert view is not None and not view.active and view.ttl == 0
    assert reg.query(None) == []
    assert reg.keep_alive(a) is Refusal.INACTIVE


def test_pquery_excludes_the_asker_and_resets_its_ttl() -> None:
    reg, clock = registry()
    a = cookie_of(reg.register("a", 5000, None))
    reg.register("b", 5001, None)
    clock.advance(7000)
    assert reg.query(a) == [PeerAddr("b", 5001)]
    assert reg.view(a).ttl == 7200  # type: ignore[union-attr]
    clock.advance(300)  # b has been silent 7300 s, a only 300 s
    assert reg.query(a) == []
    assert reg.view(a).active  # type: ignore[union-attr]


def test_pquery_lists_active_peers_only() -> None:
    reg, clock = registry()
    a = cookie_of(reg.register("a", 5000, None))
    b = cookie_of(reg.register("b", 5001, None))
    c = cookie_of(reg.register("c", 5002, None))
    assert reg.query(a) == [PeerAddr("b", 5001), PeerAddr("c", 5002)]
    assert reg.leave(b) is None
    assert reg.query(a) == [PeerAddr("c", 5002)]
    assert set(reg.query(None)) == {PeerAddr("a", 5000), PeerAddr("c", 5002)}  # anonymous
    clock.advance(7200)
    assert reg.query(None) == []
    assert reg.query(c) is Refusal.INACTIVE


def test_re_register_keeps_the_cookie_and_counts() -> None:
    reg, clock = registry()
    a = cookie_of(reg.register("a", 5000, None))
    reg.leave(a)
    clock.advance(50)
    again = reg.register("a", 6000, a)
    assert cookie_of(again) == a
    view = reg.view(a)
    assert view is not None and view.active and view.port == 6000 and view.registrations == 2
    assert view.last_registered.timestamp() == clock.wall()


def test_cookies_are_never_reused_even_by_a_restarted_rs() -> None:
    reg, _clock = registry()
    seen = set()
    for i in range(50):
        cookie = cookie_of(reg.register("h", 5000 + i, None))
        assert cookie not in seen and 1 <= cookie <= limits.DI_MAX_COOKIE
        seen.add(cookie)
        reg.leave(cookie)
    restarted, _clock = registry()  # a fresh RS knows nothing of the cookies above
    assert all(cookie_of(restarted.register("h", 1, None)) not in seen for _ in range(50))


def test_unknown_cookies_are_refused() -> None:
    reg, _clock = registry()
    assert reg.register("a", 1, 99) is Refusal.UNKNOWN
    assert reg.keep_alive(99) is Refusal.UNKNOWN
    assert reg.leave(99) is Refusal.UNKNOWN
    assert reg.query(99) is Refusal.UNKNOWN
    assert reg.view(99) is None


def test_registrations_are_counted_over_the_last_30_days() -> None:
    reg, clock = registry()
    a = cookie_of(reg.register("a", 5000, None))
    clock.advance(10 * DAY)
    reg.register("a", 5000, a)
    clock.advance(10 * DAY)
    reg.register("a", 5000, a)
    assert reg.view(a).registrations == 3  # type: ignore[union-attr]
    clock.advance(10 * DAY + 1)  # the first registration is now 30 days and 1 s old
    assert reg.view(a).registrations == 2  # type: ignore[union-attr]


def test_a_new_peer_on_an_active_address_replaces_the_old_record() -> None:
    reg, _clock = registry()
    old = cookie_of(reg.register("a", 5000, None))
    new = cookie_of(reg.register("a", 5000, None))  # restarted without its cookie
    assert reg.query(None) == [PeerAddr("a", 5000)]
    assert not reg.view(old).active and reg.view(new).active  # type: ignore[union-attr]


def test_inactive_peers_leave_the_active_set() -> None:
    """PQuery walks only the active set, so its cost does not grow with departed peers."""
    reg, clock = registry()
    cookies = [cookie_of(reg.register("h", 1000 + i, None)) for i in range(1000)]
    for cookie in cookies[:500]:
        reg.leave(cookie)
    clock.advance(3600)
    stay = cookies[-1]
    reg.keep_alive(stay)
    assert reg.active_count() == 500
    clock.advance(3601)  # everyone but `stay` has now been silent 7201 s
    assert reg.active_count() == 1
    assert reg.query(None) == [PeerAddr("h", 1999)]
    assert len(reg.views()) == 1000  # records are kept, inactive


def lines(body: bytes | Refusal) -> list[bytes]:
    assert isinstance(body, bytes)
    return sorted(body.splitlines(keepends=True))


def test_pquery_body_leaves_out_exactly_the_askers_line() -> None:
    """Host names that are prefixes or suffixes of others, the asker first, middle, last."""
    reg, _clock = registry()
    addrs = [("aa", 5000), ("a", 5000), ("a", 50001), ("ba", 5000), ("a", 500)]
    cookies = [cookie_of(reg.register(h, p, None)) for h, p in addrs]
    every = [f"{h} {p}\r\n".encode() for h, p in addrs]
    for cookie, line in zip(cookies, every, strict=True):
        assert lines(reg.listing(cookie)) == sorted(x for x in every if x != line)
        assert reg.listing(cookie) == b"".join(
            p.to_line() + b"\r\n" for p in reg.query(cookie))  # type: ignore[union-attr]
    assert lines(reg.listing(None)) == sorted(every)


def test_pquery_body_follows_joins_leaves_moves_and_expiry() -> None:
    reg, clock = registry()
    a = cookie_of(reg.register("a", 1, None))
    b = cookie_of(reg.register("b", 2, None))
    assert reg.listing(a) == b"b 2\r\n"
    reg.register("b", 3, b)  # moved: its new address only
    assert reg.listing(a) == b"b 3\r\n"
    reg.leave(b)
    assert reg.listing(a) == b"" and reg.listing(b) is Refusal.INACTIVE
    c = cookie_of(reg.register("c", 4, None))
    clock.advance(7200)  # a and c fall silent
    assert reg.listing(None) == b"" and reg.listing(c) is Refusal.INACTIVE
    assert reg.listing(99) is Refusal.UNKNOWN


class RegistryModel(RuleBasedStateMachine):
    """The registry against a plain model: cookie -> (address, left?, last contact)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.reg = Registry(ttl=100, clock=self.clock, wall=self.clock.wall)
        self.model: dict[int, tuple[PeerAddr, bool, float]] = {}
        self.issued: set[int] = set()

    def active(self, cookie: int) -> bool:
        _addr, left, contact = self.model[cookie]
        return not left and self.clock.now - contact < 100

    def touch(self, cookie: int) -> None:
        addr, _left, _contact = self.model[cookie]
        self.model[cookie] = (addr, False, self.clock.now)

    def registered(self, cookie: int, port: int) -> None:
        """The model after ``cookie`` registered ``port``: an active holder of it is replaced."""
        for other, (addr, _left, contact) in self.model.items():
            if other != cookie and addr.port == port and self.active(other):
                self.model[other] = (addr, True, contact)
        self.model[cookie] = (PeerAddr("h", port), False, self.clock.now)

    @rule(port=st.integers(1, 5))
    def register_new(self, port: int) -> None:
        cookie = cookie_of(self.reg.register("h", port, None))
        assert cookie not in self.issued
        self.issued.add(cookie)
        self.registered(cookie, port)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), port=st.integers(1, 5))
    def register_again(self, data: st.DataObject, port: int) -> None:
        cookie = data.draw(st.sampled_from(sorted(self.model)))
        assert cookie_of(self.reg.register("h", port, cookie)) == cookie
        self.registered(cookie, port)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        cookie = data.draw(st.sampled_from(sorted(self.model)))
        assert self.reg.leave(cookie) is None
        addr, _left, contact = self.model[cookie]
        self.model[cookie] = (addr, True, contact)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def keep_alive(self, data: st.DataObject) -> None:
        cookie = data.draw(st.sampled_from(sorted(self.model)))
        expected = None if self.active(cookie) else Refusal.INACTIVE
        assert self.reg.keep_alive(cookie) is expected
        if expected is None:
            self.touch(cookie)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def pquery(self, data: st.DataObject) -> None:
        cookie = data.draw(st.sampled_from(sorted(self.model)))
        if not self.active(cookie):
            assert self.reg.listing(cookie) is Refusal.INACTIVE
            return
        body = self.reg.listing(cookie)
        self.touch(cookie)
        assert lines(body) == sorted(f"{a.host} {a.port}\r\n".encode()
                                     for c, (a, _l, _t) in self.model.items()
                                     if c != cookie and self.active(c))

    @rule(seconds=st.sampled_from([1.0, 30.0, 99.0, 100.0, 150.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def query_matches_the_model(self) -> None:
        expected = sorted((a.host, a.port) for c, (a, _l, _t) in self.model.items()
                          if self.active(c))
        got = self.reg.query(None)
        assert not isinstance(got, Refusal)
        assert sorted((p.host, p.port) for p in got) == expected
        assert self.reg.listing(None) == b"".join(p.to_line() + b"\r\n" for p in got)
        assert self.reg.active_count() == len(expected)


TestRegistryModel = RegistryModel.TestCase
TestRegistryModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_limits_are_the_handouts() -> None:
    assert limits.DI_TTL == 7200 and limits.RS_PORT == 65423
