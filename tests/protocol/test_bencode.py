"""The strict bencode codec: canonical input only, round trips, bounded, never a stray error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.protocol.bencode import BencodeError, Value, decode, decode_prefix, encode

values: st.SearchStrategy[Value] = st.recursive(
    st.integers(-(10**31), 10**32 - 1) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.binary(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, b"i0e"),
        (-42, b"i-42e"),
        (2**70, b"i1180591620717411303424e"),
        (b"", b"0:"),
        (b"spam", b"4:spam"),
        ([], b"le"),
        ([b"a", 1, [b"b"]], b"l1:ai1el1:bee"),
        ({}, b"de"),
        ({b"cow": b"moo", b"spam": b"eggs"}, b"d3:cow3:moo4:spam4:eggse"),
        # keys are sorted as raw bytes, not as text: b"Z" < b"a" < b"\xff"
        ({b"\xff": 0, b"a": 1, b"Z": 2}, b"d1:Zi2e1:ai1e1:\xffi0ee"),
    ],
)
def test_known_encodings(value: Value, wire: bytes) -> None:
    assert encode(value) == wire
    assert decode(wire) == value


@pytest.mark.parametrize(
    "wire",
    [
        b"i-0e",  # minus zero
        b"i03e",  # leading zero
        b"i-03e",
        b"ie",
        b"i1",  # truncated
        b"i+1e",
        b"i 1e",
        b"01:a",  # leading zero in a length
        b"-1:a",
        b"5:abc",  # runs past the end
        b"d1:bi1e1:ai2ee",  # keys out of order
        b"d1:ai1e1:ai2ee",  # a key repeated
        b"di1ei2ee",  # a key that is not a string
        b"l",  # truncated list
        b"d1:a",  # truncated dictionary
        b"d1:ae",  # a key with no value
        b"i1ei2e",  # trailing data
        b"4:spamx",
        b"x",
        b"",
        b"e",
    ],
)
def test_non_canonical_or_broken_is_refused(wire: bytes) -> None:
    with pytest.raises(BencodeError):
        decode(wire)


def test_depth_is_bounded() -> None:
    deep = b"l" * (limits.MAX_BENCODE_DEPTH + 1) + b"e" * (limits.MAX_BENCODE_DEPTH + 1)
    with pytest.raises(BencodeError, match="nested"):
        decode(deep)
    ok = b"l" * limits.MAX_BENCODE_DEPTH + b"e" * limits.MAX_BENCODE_DEPTH
    assert decode(ok) is not None


def test_integer_digits_are_bounded() -> None:
    assert decode(b"i%de" % (10**32 - 1)) == 10**32 - 1
    with pytest.raises(BencodeError):
        decode(b"i%de" % 10**32)
    with pytest.raises(BencodeError):
        decode(b"%d:" % 10**32)


def test_size_is_bounded() -> None:
    with pytest.raises(BencodeError, match="over"):
        decode(b"4:spam", max_size=5)
    assert decode(b"4:spam", max_size=6) == b"spam"


def test_prefix_leaves_the_rest() -> None:
    wire = b"d8:msg_typei1e5:piecei0ee" + b"RAW"
    value, end = decode_prefix(wire)
    assert value == {b"msg_type": 1, b"piece": 0}
    assert wire[end:] == b"RAW"


def test_refuses_what_has_no_bencoding() -> None:
    for bad in ("text", True, 1.5, {"key": 1}, None):
        with pytest.raises(TypeError):
            encode(bad)  # type: ignore[arg-type]


@given(values)
def test_round_trip(value: Value) -> None:
    assert decode(encode(value)) == value


@given(values)
def test_every_strict_prefix_is_refused(value: Value) -> None:
    wire = encode(value)
    for cut in range(len(wire)):
        with pytest.raises(BencodeError):
            decode(wire[:cut])


@given(st.binary(max_size=200))
def test_random_bytes_decode_or_bencode_error(data: bytes) -> None:
    try:
        value = decode(data)
    except BencodeError:
        return
    # Whatever is accepted is canonical: it encodes back to the very same bytes.
    assert encode(value) == data


def test_unordered_keys_are_read_only_when_asked_and_never_twice() -> None:
    """``ordered=False`` (tracker answers): keys in any order, but a repeated key (even
    after a larger one) is still refused; the default stays canonical only."""
    wire = b"d8:intervali1800e8:completei3ee"
    with pytest.raises(BencodeError):
        decode(wire)
    assert decode(wire, ordered=False) == {b"interval": 1800, b"complete": 3}
    assert decode(b"d1:bi1e1:ali1eee", ordered=False) == {b"b": 1, b"a": [1]}
    for twice in (b"d1:bi1e1:ai2e1:bi3ee", b"d1:ai1e1:ai2ee"):
        with pytest.raises(BencodeError, match="twice"):
            decode(twice, ordered=False)


def test_values_can_be_bounded() -> None:
    assert decode(b"li1ei2ee", max_values=3) == [1, 2]
    with pytest.raises(BencodeError, match="values"):
        decode(b"li1ei2ee", max_values=2)
