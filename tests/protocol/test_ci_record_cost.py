"""``ci.parse_record`` does work linear in the line, counted, not timed.

A line of blanks once made a whole-line pattern backtrack for minutes. Here the line is a
``Metered`` value: every method called on it, or on a string cut from it, is charged the
length of the string it runs on, and every slice the length it copies; every pattern of
``ci`` is charged the length of the string it is given. That is an upper bound on what
linear primitives scan, so a parser that makes a bounded number of passes costs O(n) and
one that re-scans or re-copies the rest of the line per character costs O(n²). The
pattern engine's own backtracking stays invisible to this count: what it catches is a
loop around the primitives, which is how the fix (cut words from the right) could regress.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import ci


class Meter:
    charged = 0


def _metered(value: object) -> object:
    if isinstance(value, str) and not isinstance(value, MeteredStr):
        return MeteredStr(value)
    if isinstance(value, bytes) and not isinstance(value, MeteredBytes):
        return MeteredBytes(value)
    if isinstance(value, tuple | list):
        return type(value)(_metered(v) for v in value)
    return value


class _Charged:
    """Mixin: a method call costs ``len(self)``; a slice costs what it copies."""

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("__") or not callable(attr):
            return attr

        def charged(*args: Any, **kwargs: Any) -> object:
            Meter.charged += len(self)
            return _metered(attr(*args, **kwargs))
        return charged

    def __getitem__(self, key: Any) -> Any:
        part = super().__getitem__(key)  # type: ignore[misc]
        Meter.charged += len(part) if isinstance(key, slice) else 1
        return _metered(part)


class MeteredStr(_Charged, str):
    pass


class MeteredBytes(_Charged, bytes):
    pass


class MeteredPattern:
    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.pattern, name)

        def charged(string: str, *args: Any) -> object:
            Meter.charged += len(string)
            return attr(string, *args)
        return charged


@pytest.fixture
def metered_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in vars(ci).items():
        if isinstance(value, re.Pattern):
            monkeypatch.setattr(ci, name, MeteredPattern(value))


def cost(parse: Callable[[bytes], object], line: bytes) -> int:
    """What ``parse(line)`` is charged (a parse that refuses the line counts too)."""
    Meter.charged = 0
    try:
        parse(MeteredBytes(line))
    except RemoteProtocolError:
        pass
    return Meter.charged


def lines(n: int) -> Iterator[bytes]:
    """Lines of about ``n`` bytes shaped to make a careless parser re-scan."""
    yield b"RFC 1 " + b" " * n + b"x"  # blanks between the title and the last word
    yield b"RFC 1 Title" + b" " * n + b"host 5"  # blanks before the host
    yield b"RFC 1 " + b"a " * (n // 2)  # many short words
    yield b"RFC 1 " + b"\t 9" * (n // 3)
    yield b"RFC 1 " + b"T" * n + b" h 5"  # a valid record with a long title


N = limits.MAX_LINE // 8
GROWTH = 8  # the lines grow 8 times...
ALLOWED = 2 * GROWTH  # ...and linear work may grow 16 times; quadratic grows about 64


def worst_growth(parse: Callable[[bytes], object]) -> float:
    """The largest cost(8n) / cost(n) over the shapes of ``lines``."""
    small, large = lines(N), lines(N * GROWTH)
    ratios = []
    for short, long in zip(small, large, strict=True):
        base = cost(parse, short)
        assert base >= N, "the meter does not see the parser's work"
        ratios.append(cost(parse, long) / base)
    return max(ratios)


def _cut_last_word_quadratic(text: str) -> tuple[str, str]:
    """``ci._cut_last_word`` as it must not be: blanks dropped one copy at a time."""
    cut = max(text.rfind(" "), text.rfind("\t"))
    rest = text[:cut] if cut >= 0 else ""
    while rest.endswith((" ", "\t")):
        rest = rest[:-1]
    return rest, text[cut + 1:]


@pytest.mark.usefixtures("metered_patterns")
def test_parse_record_work_is_linear_in_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ci.parse_record(MeteredBytes(b"RFC 1 T h 5")) == ci.Record(1, "T", "h", 5)
    assert worst_growth(ci.parse_record) <= ALLOWED
    # The same check must catch a quadratic parser: here, one whose word cutter copies the
    # rest of the line once per trailing blank.
    monkeypatch.setattr(ci, "_cut_last_word", _cut_last_word_quadratic)
    assert ci.parse_record(b"RFC 1 T   h 5") == ci.Record(1, "T", "h", 5)
    assert worst_growth(ci.parse_record) > 3 * ALLOWED
