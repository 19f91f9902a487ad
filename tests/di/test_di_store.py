"""The RS's peer list: cookies, TTL from last contact, 30-day counts, active set; a model."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from p2pshare import limits
from p2pshare.protocol.di import PeerAddr
from p2pshare.registry.store import Budgets, Page, PeerRecord, Refusal, Registry

from .clock import FakeClock

DAY = 24 * 3600.0


def registry(budgets: Budgets | None = None) -> tuple[Registry, FakeClock]:
    clock = FakeClock()
    return Registry(clock=clock, wall=clock.wall, budgets=budgets), clock


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
    assert reg.query(a) == [PeerAddr("c", 5002), PeerAddr("b", 5001)]  # newest first
    assert reg.leave(b) is None
    assert reg.query(a) == [PeerAddr("c", 5002)]
    anonymous = reg.query(None)
    assert not isinstance(anonymous, Refusal)
    assert set(anonymous) == {PeerAddr("a", 5000), PeerAddr("c", 5002)}
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
    assert len(reg.views()) == 1000  # records are kept, inactive, for DI_FORGET_AFTER


def body(page: Page | Refusal) -> bytes:
    assert isinstance(page, Page), page
    return page.body


def lines(page: Page | Refusal) -> list[bytes]:
    return sorted(body(page).splitlines(keepends=True))


def test_pquery_body_leaves_out_exactly_the_askers_line() -> None:
    """Host names that are prefixes or suffixes of others, the asker first, middle, last."""
    reg, _clock = registry()
    addrs = [("aa", 5000), ("a", 5000), ("a", 50001), ("ba", 5000), ("a", 500)]
    cookies = [cookie_of(reg.register(h, p, None)) for h, p in addrs]
    every = [f"{h} {p}\r\n".encode() for h, p in addrs]
    for cookie, line in zip(cookies, every, strict=True):
        assert lines(reg.listing(cookie)) == sorted(x for x in every if x != line)
        assert body(reg.listing(cookie)) == b"".join(
            p.to_line() + b"\r\n" for p in reg.query(cookie))  # type: ignore[union-attr]
    assert lines(reg.listing(None)) == sorted(every)


def test_pquery_body_follows_joins_leaves_moves_and_expiry() -> None:
    reg, clock = registry()
    a = cookie_of(reg.register("a", 1, None))
    b = cookie_of(reg.register("b", 2, None))
    assert body(reg.listing(a)) == b"b 2\r\n"
    reg.register("b", 3, b)  # moved: its new address only
    assert body(reg.listing(a)) == b"b 3\r\n"
    reg.leave(b)
    assert body(reg.listing(a)) == b"" and reg.listing(b) is Refusal.INACTIVE
    c = cookie_of(reg.register("c", 4, None))
    clock.advance(7200)  # a and c fall silent
    assert body(reg.listing(None)) == b"" and reg.listing(c) is Refusal.INACTIVE
    assert reg.listing(99) is Refusal.UNKNOWN


# ----------------------------------------------------------------------------- budgets
def test_pquery_pages_newest_first_and_the_pages_cover_everyone() -> None:
    reg, _clock = registry(Budgets(listed=3))
    cookies = [cookie_of(reg.register("h", 100 + i, None)) for i in range(8)]
    first = reg.listing(None)
    assert first == Page(b"h 107\r\nh 106\r\nh 105\r\n", 3)
    pages, offset = [], 0
    while True:
        page = reg.listing(cookies[4], offset)  # h 104 asks: left out of its page
        assert isinstance(page, Page)
        pages.append(page.body)
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert pages == [b"h 107\r\nh 106\r\nh 105\r\n", b"h 103\r\nh 102\r\n",
                     b"h 101\r\nh 100\r\n"]
    assert reg.listing(None, 100) == Page(b"", None)  # beyond the end


def test_pquery_pages_take_turns_by_source_so_a_flood_cannot_fill_the_first_page() -> None:
    """One victim from 127.0.0.1 registered before 100 peers of 127.0.0.2: the first page
    (all a download reads) has one line of each source a turn, so the victim is on it."""
    reg, _clock = registry(Budgets(listed=4))
    reg.register("victim", 1, None, source="127.0.0.1")
    for i in range(100):
        reg.register("flood", 100 + i, None, source="127.0.0.2")
    reg.register("other", 2, None, source="127.0.0.3")
    first = reg.listing(None)
    assert first == Page(b"other 2\r\nflood 199\r\nvictim 1\r\nflood 198\r\n", 4)
    seen, offset = b"", 0
    while (page := reg.listing(None, offset)) and isinstance(page, Page):
        seen += page.body
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert seen.count(b"\r\n") == 102 and seen.endswith(b"flood 100\r\n")


def test_a_live_address_cannot_be_taken_from_another_source() -> None:
    reg, _clock = registry()
    victim = cookie_of(reg.register("v", 5000, None, "10.0.0.1"))
    assert reg.register("v", 5000, None, "10.0.0.2") is Refusal.ADDRESS_TAKEN
    thief = cookie_of(reg.register("t", 1, None, "10.0.0.2"))
    assert reg.register("v", 5000, thief, "10.0.0.2") is Refusal.ADDRESS_TAKEN  # nor moving
    assert reg.query(None) == [PeerAddr("t", 1), PeerAddr("v", 5000)]
    assert reg.view(victim).active  # type: ignore[union-attr]
    # its own cookie, from anywhere (a laptop that moved), keeps the address
    assert cookie_of(reg.register("v", 5000, victim, "10.0.0.3")) == victim
    reg.leave(victim)  # once it left, the address is free
    assert cookie_of(reg.register("v", 5000, None, "10.0.0.2")) != victim


def test_a_source_holds_at_most_its_budget_forgetting_its_inactive_records_first() -> None:
    reg, _clock = registry(Budgets(max_per_source=3))
    mine = [cookie_of(reg.register("a", p, None, "A")) for p in (1, 2, 3)]
    assert reg.register("a", 4, None, "A") is Refusal.SOURCE_FULL
    assert cookie_of(reg.register("b", 1, None, "B")) > 0  # other sources are unaffected
    reg.leave(mine[1])
    reg.leave(mine[0])
    fourth = cookie_of(reg.register("a", 4, None, "A"))  # the oldest inactive one goes
    assert reg.view(mine[1]) is None and reg.view(mine[0]) is not None
    assert reg.held("A") == 3 and reg.held() == 4
    # a record moving to a full source needs room there too
    other = cookie_of(reg.register("b", 2, None, "B"))
    reg.register("a", 5, None, "A")  # forgets mine[0], the last inactive one
    assert reg.register("b", 2, other, "A") is Refusal.SOURCE_FULL
    assert reg.query(None) is not None and fourth in {v.cookie for v in reg.views()}


def test_a_full_rs_forgets_the_oldest_inactive_record_or_refuses() -> None:
    reg, _clock = registry(Budgets(max_peers=3))
    a, b, _c = (cookie_of(reg.register("h", p, None, f"s{p}")) for p in (1, 2, 3))
    assert reg.register("h", 4, None, "s4") is Refusal.FULL
    reg.leave(b)
    reg.leave(a)
    assert cookie_of(reg.register("h", 4, None, "s4")) > 0
    assert reg.view(b) is None and reg.view(a) is not None and reg.held() == 3
    assert reg.register("h", 1, b, "s2") is Refusal.UNKNOWN  # forgotten: a new cookie next


def test_inactive_records_are_forgotten_after_forget_after_in_bounded_steps() -> None:
    reg, clock = registry(Budgets(forget_after=1000))
    cookies = [cookie_of(reg.register("h", 1 + i, None, "A")) for i in range(200)]
    back = cookies[0]
    for cookie in cookies:
        reg.leave(cookie)
    clock.advance(500)
    assert cookie_of(reg.register("h", 1, back, "A")) == back  # back in time: kept, counted
    assert reg.view(back).registrations == 2  # type: ignore[union-attr]
    clock.advance(500)
    reg.listing(None)  # one request forgets DI_PURGE_STEP records at most
    assert reg.held() == 200 - limits.DI_PURGE_STEP
    for _ in range(3):
        reg.listing(None)
    assert reg.held() == 1 and reg.held("A") == 1 and reg.view(back) is not None
    assert reg.register("h", 2, cookies[1], "A") is Refusal.UNKNOWN


class RegistryModel(RuleBasedStateMachine):
    """The registry against a plain model, two sources and small budgets: cookie ->
    (address, left?, last contact, source, when last registered). Which inactive record a
    budget forgets is the registry's choice; the model follows it (``sync``) and checks it
    was inactive. Records idle for ``forget_after`` are tested apart (never here)."""

    PER_SOURCE, PEERS, LISTED = 3, 5, 2

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        budgets = Budgets(max_peers=self.PEERS, max_per_source=self.PER_SOURCE,
                          forget_after=1e12, listed=self.LISTED)
        self.reg = Registry(ttl=100, clock=self.clock, wall=self.clock.wall, budgets=budgets)
        self.model: dict[int, tuple[PeerAddr, bool, float, str, int]] = {}
        self.issued: set[int] = set()
        self.serial = 0  # orders registrations: PQuery lists the newest first

    def active(self, cookie: int) -> bool:
        _addr, left, contact, _source, _serial = self.model[cookie]
        return not left and self.clock.now - contact < 100

    def touch(self, cookie: int) -> None:
        addr, _left, _contact, source, serial = self.model[cookie]
        self.model[cookie] = (addr, False, self.clock.now, source, serial)

    def set_left(self, cookie: int) -> None:
        addr, _left, contact, source, serial = self.model[cookie]
        self.model[cookie] = (addr, True, contact, source, serial)

    def expected(self, cookie: int | None, port: int, source: str) -> Refusal | None:
        """What registering ``port`` from ``source`` should give, before any change."""
        for other, (addr, _l, _t, src, _s) in self.model.items():
            if other != cookie and addr.port == port and self.active(other) and src != source:
                return Refusal.ADDRESS_TAKEN
        if cookie is not None and self.model[cookie][3] == source:
            return None
        mine = [c for c, m in self.model.items() if m[3] == source]
        idle = [c for c, m in self.model.items() if not self.active(c)
                or (m[0].port == port and c != cookie)]  # a holder it replaces goes idle
        if len(mine) >= self.PER_SOURCE and not set(mine) & set(idle):
            return Refusal.SOURCE_FULL
        full = len(self.model) >= self.PEERS and not idle
        return Refusal.FULL if cookie is None and full else None

    def registered(self, cookie: int, port: int, source: str) -> None:
        """The model after ``cookie`` registered ``port``: a same-source holder replaced."""
        for other, (addr, _left, _contact, _src, _serial) in self.model.items():
            if other != cookie and addr.port == port and self.active(other):
                self.set_left(other)
        self.serial += 1
        self.model[cookie] = (PeerAddr("h", port), False, self.clock.now, source, self.serial)

    def sync(self) -> None:
        """Forget in the model what the registry forgot: inactive records only."""
        for cookie in [c for c in self.model if self.reg.view(c) is None]:
            assert not self.active(cookie), "an active record was forgotten"
            del self.model[cookie]

    @rule(port=st.integers(1, 6), source=st.sampled_from("AB"))
    def register_new(self, port: int, source: str) -> None:
        expected = self.expected(None, port, source)
        got = self.reg.register("h", port, None, source)
        if expected is not None:
            assert got is expected
            return
        cookie = cookie_of(got)
        assert cookie not in self.issued
        self.issued.add(cookie)
        self.registered(cookie, port, source)
        self.sync()

    @precondition(lambda self: self.model)
    @rule(data=st.data(), port=st.integers(1, 6), source=st.sampled_from("AB"))
    def register_again(self, data: st.DataObject, port: int, source: str) -> None:
        cookie = data.draw(st.sampled_from(list(self.model)))
        expected = self.expected(cookie, port, source)
        got = self.reg.register("h", port, cookie, source)
        if expected is not None:
            assert got is expected
            return
        assert cookie_of(got) == cookie
        self.registered(cookie, port, source)
        self.sync()

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        cookie = data.draw(st.sampled_from(list(self.model)))
        assert self.reg.leave(cookie) is None
        self.set_left(cookie)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def keep_alive(self, data: st.DataObject) -> None:
        cookie = data.draw(st.sampled_from(list(self.model)))
        expected = None if self.active(cookie) else Refusal.INACTIVE
        assert self.reg.keep_alive(cookie) is expected
        if expected is None:
            self.touch(cookie)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def pquery(self, data: st.DataObject) -> None:
        cookie = data.draw(st.sampled_from(list(self.model)))
        if not self.active(cookie):
            assert self.reg.listing(cookie) is Refusal.INACTIVE
            return
        expected = self.newest_first(cookie)
        self.pages_take_turns(expected, cookie)
        self.touch(cookie)

    @rule(seconds=st.sampled_from([1.0, 30.0, 99.0, 100.0, 150.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def newest_first(self, asker: int | None) -> list[PeerAddr]:
        live = sorted((m[4], m[0]) for c, m in self.model.items()
                      if c != asker and self.active(c))
        return [addr for _serial, addr in reversed(live)]

    def pages(self, cookie: int | None) -> bytes:
        """Every page of the list, in order, following next_offset."""
        got, offset = b"", 0
        while True:
            page = self.reg.listing(cookie, offset)
            assert isinstance(page, Page)
            assert page.body.count(b"\n") <= self.LISTED
            got += page.body
            if page.next_offset is None:
                return got
            offset = page.next_offset

    @invariant()
    def query_matches_the_model(self) -> None:
        expected = self.newest_first(None)
        assert self.reg.query(None) == expected
        self.pages_take_turns(expected)
        assert self.reg.active_count() == len(expected)

    def pages_take_turns(self, expected: list[PeerAddr], asker: int | None = None) -> None:
        """The pages list every active peer but the asker once, in turns by source
        address: the first turn has one line of each source (when no one is left out),
        and each source's lines come newest first."""
        got = self.pages(asker).splitlines()
        assert sorted(got) == sorted(p.to_line() for p in expected)
        source_of = {m[0].to_line(): m[3] for c, m in self.model.items() if self.active(c)}
        sources = {source_of[line] for line in got}
        if asker is None:
            assert {source_of[line] for line in got[:len(sources)]} == sources
        for source in sources:
            mine = [p.to_line() for p in expected if source_of[p.to_line()] == source]
            assert [line for line in got if source_of[line] == source] == mine

    @invariant()
    def budgets_hold(self) -> None:
        assert self.reg.held() == len(self.model) <= self.PEERS
        for source in "AB":
            held = self.reg.held(source)
            assert held == sum(m[3] == source for m in self.model.values())
            assert held <= self.PER_SOURCE


TestRegistryModel = RegistryModel.TestCase
TestRegistryModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_limits_are_the_handouts() -> None:
    assert limits.DI_TTL == 7200 and limits.RS_PORT == 65423
