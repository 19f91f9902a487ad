"""Reconnect backoff: doubling from ``first`` up to ``cap``, jitter within bounds, reset."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.backoff import Backoff


def delays(backoff: Backoff, n: int) -> list[float]:
    return [backoff.next_delay() for _ in range(n)]


def test_without_jitter_delays_double_up_to_the_cap() -> None:
    assert delays(Backoff(0.2, 10.0, jitter=0), 9) == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0])


def test_reset_starts_again_from_first() -> None:
    backoff = Backoff(1.0, 8.0, factor=3, jitter=0)
    assert delays(backoff, 3) == [1.0, 3.0, 8.0]
    backoff.reset()
    assert delays(backoff, 2) == [1.0, 3.0]


@pytest.mark.parametrize(("draw", "spread"), [(0.0, 0.9), (0.5, 1.0), (0.999999, 1.1)])
def test_jitter_spreads_each_delay_by_the_random_draw(draw: float, spread: float) -> None:
    backoff = Backoff(1.0, 100.0, jitter=0.1, rand=lambda: draw)
    assert delays(backoff, 3) == pytest.approx([spread, 2 * spread, 4 * spread], rel=1e-5)


def test_jitter_never_goes_over_the_cap() -> None:
    backoff = Backoff(1.0, 4.0, jitter=0.5, rand=lambda: 0.999)
    assert delays(backoff, 5) == pytest.approx([1.499, 2.998, 4.0, 4.0, 4.0])


@given(st.floats(0.01, 5), st.floats(1, 4), st.floats(0, 0.9), st.integers(0, 2**32))
def test_every_delay_is_within_jitter_of_its_base_and_at_most_the_cap(
        first: float, factor: float, jitter: float, seed: int) -> None:
    cap = first * 50
    backoff = Backoff(first, cap, factor, jitter, rand=random.Random(seed).random)
    base = first
    for delay in delays(backoff, 20):
        assert base * (1 - jitter) - 1e-9 <= delay <= min(base * (1 + jitter), cap) + 1e-9
        base = min(base * factor, cap)


def test_the_default_random_source_spreads_delays() -> None:
    assert len({Backoff().next_delay() for _ in range(20)}) > 1


@pytest.mark.parametrize("args", [(0, 1), (2, 1), (1, 2, 0.5), (1, 2, 2, 1.0)])
def test_nonsense_parameters_are_refused(
        args: tuple[float, float] | tuple[float, float, float] | tuple[float, float, float, float],
) -> None:
    with pytest.raises(ValueError):
        Backoff(*args)
