"""The rate limiter's arithmetic, on an injected clock: no time passes in these tests."""

from __future__ import annotations

import random

import pytest

from p2pshare import limits
from p2pshare.net.rate import RateLimiter, limiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_grants_are_paced_at_the_rate() -> None:
    clock = Clock()
    pace = RateLimiter(1000, clock)
    assert pace.reserve(500) == 0  # the first run goes at once
    assert pace.reserve(500) == pytest.approx(0.5)  # after the first one's time
    clock.now += 0.2
    assert pace.reserve(100) == pytest.approx(0.8)  # free at 1.0 s, asked at 0.2 s
    assert pace.granted == 1100


def test_idle_once_every_grant_may_have_been_used() -> None:
    clock = Clock()
    pace = RateLimiter(1000, clock)
    assert pace.idle
    pace.reserve(500)
    assert not pace.idle
    clock.now += 0.49
    assert not pace.idle
    clock.now += 0.01
    assert pace.idle


def test_an_idle_flow_earns_no_credit() -> None:
    clock = Clock()
    pace = RateLimiter(1000, clock)
    pace.reserve(1000)
    clock.now += 60
    assert pace.reserve(1000) == 0
    assert pace.reserve(1000) == pytest.approx(1.0)  # no burst from the idle minute


def test_many_users_never_run_ahead_of_the_rate() -> None:
    """Callers that each wait what they are told: what is granted by any moment stays
    within one run of rate * elapsed, and a saturated run achieves the rate within 1%."""
    clock = Clock()
    rate = 4 * 1024 * 1024
    pace = RateLimiter(rate, clock)
    rng = random.Random(7)
    ready = [clock.now] * 8  # when each of 8 users may ask again
    for _ in range(5000):
        user = min(range(len(ready)), key=ready.__getitem__)
        clock.now = ready[user]
        count = rng.randint(1, pace.run)
        delay = pace.reserve(count)
        ready[user] = clock.now + delay + count / rate / 10  # uses it, then asks again
        assert pace.granted <= rate * (clock.now + delay - pace.started) + pace.run
    elapsed = max(ready) - pace.started
    assert pace.granted / elapsed == pytest.approx(rate, rel=0.01)
    assert 0 < pace.ahead <= pace.run


def test_run_size_follows_the_rate_within_bounds() -> None:
    assert RateLimiter(1024).run == limits.THROTTLE_RUN
    assert RateLimiter(10 ** 12).run == limits.RECV_CHUNK
    rate = 4 * 1024 * 1024
    assert RateLimiter(rate).run == int(rate * limits.RATE_RUN_SECONDS)


def test_no_limit_and_bad_limits() -> None:
    assert limiter(None) is None and limiter(0) is None
    assert isinstance(limiter(10), RateLimiter)
    with pytest.raises(ValueError):
        RateLimiter(-1)
