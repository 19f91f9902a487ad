"""Every finding of the codec fuzz campaign (bench/fuzz), with the exact input that found it.

Each test feeds the codec the bytes that broke the invariant "parses, or raises the
protocol error, nothing else, in bounded time", and checks that it now holds. Times are
CPU seconds and generous: the inputs took minutes (or for ever) before their fix, and
milliseconds after.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import di
from p2pshare.swarm.manifest import Manifest

CPU_BOUND = 2.0  # seconds of CPU an input may take here, on a loaded machine


@contextmanager
def bounded() -> Iterator[None]:
    start = time.process_time()
    yield
    assert time.process_time() - start < CPU_BOUND


# --------------------------------------------------------------------------- P2P-DI
# A line of blanks that does not end as an index line: the whole-line pattern backtracked
# in cubic time (800 blanks: 1.2 s; a 16 MiB RFCQuery body: for ever).
BLANKS_LINE = b"RFC 1" + b" " * 8000 + b"x"
TABS_LINE = b"RFC 1 a" + b"\t \t" * 2000 + b"1 2 x"


@pytest.mark.parametrize("line", [BLANKS_LINE, TABS_LINE])
def test_index_line_of_blanks_is_refused_in_linear_time(line: bytes) -> None:
    with bounded(), pytest.raises(RemoteProtocolError):
        di.parse_index_line(line)


def test_index_body_of_blank_lines_is_skipped_in_linear_time() -> None:
    body = (BLANKS_LINE + b"\r\n") * 64 + di.IndexLine(7, "A title", "h", 1, 2).to_line()
    with bounded():
        parsed = di.parse_index(body)
    assert parsed == di.Parsed((di.IndexLine(7, "A title", "h", 1, 2),), 64)


@pytest.mark.parametrize(("line", "record"), [
    (b"RFC 7 h 1 0", di.IndexLine(7, "", "h", 1, 0)),
    (b"rfc\t7\tA  title\th\t1\t0 ", di.IndexLine(7, "A  title", "h", 1, 0)),
    (b"RFC 7  A title  peer-b  65401  7200", di.IndexLine(7, "A title", "peer-b", 65401, 7200)),
])
def test_index_line_still_parses_as_before(line: bytes, record: di.IndexLine) -> None:
    assert di.parse_index_line(line) == record


@pytest.mark.parametrize("line", [b"RFC 7 1 0", b"RFC7 h 1 0", b"RFC 7x h 1 0", b"7 t h 1 0",
                                  b"RFC 7 t h\xe3\x80\x80 1 0", b"RFC 7 t h 1 99999999"])
def test_index_line_still_refuses_as_before(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        di.parse_index_line(line)


# ----------------------------------------------------------------------- swarm manifest
# JSON can spell a lone surrogate; the name check encoded it to UTF-8 and raised
# UnicodeEncodeError instead of refusing the manifest.
SURROGATE_MANIFEST = (
    b'{"format":1,"name":"\\ud800","piece_size":16384,"pieces":['
    b'"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",'
    b'"4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",'
    b'"dbc1b4c900ffe48d575b5da5c638040125f65db0fe3e24494b76ea986457d986"],"size":40000}'
)


@pytest.mark.parametrize("parse", [
    Manifest.from_bytes,
    lambda data: Manifest.from_bytes(data, hashlib.sha256(data).hexdigest()),
])
def test_manifest_with_a_lone_surrogate_name_is_refused(parse: Callable[[bytes], object]) -> None:
    with pytest.raises(RemoteProtocolError, match="file name"):
        parse(SURROGATE_MANIFEST)

