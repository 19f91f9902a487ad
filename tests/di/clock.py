"""A clock that moves only when a test says so (TTL tests never wait 7200 s)."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds under test control; ``wall`` is the same instant as a Unix time."""

    EPOCH = 1_800_000_000.0  # a wall-clock origin (January 2027)

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.EPOCH + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
