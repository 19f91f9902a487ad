"""Every finding of the codec fuzz campaign (bench/fuzz), with the exact input that found it.

Each test feeds the codec the bytes that broke the invariant "parses, or raises the
protocol error, nothing else, in bounded time", and checks that it now holds. Times are
CPU seconds and generous: the inputs took minutes (or for ever) before their fix, and
milliseconds after.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import di
from p2pshare.protocol import swarm as sp
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
TABS_LINE = b"RFC 1" + b"\t " * 4000 + b"x"


@pytest.mark.parametrize("line", [BLANKS_LINE, TABS_LINE], ids=["spaces", "tabs"])
def test_index_line_of_blanks_is_refused_in_linear_time(line: bytes) -> None:
    with bounded(), pytest.raises(RemoteProtocolError):
        di.parse_index_line(line)


def test_index_body_of_blank_lines_is_skipped_in_linear_time() -> None:
    body = (BLANKS_LINE + b"\r\n") * 64 + di.IndexLine(7, "A title", "h", 1, 2).to_line()
    with bounded():
        parsed = di.parse_index(body)
    assert parsed == di.Parsed((di.IndexLine(7, "A title", "h", 1, 2),), 64)


# di_bodies' own input (libFuzzer timeout-19ddd474...), found in 45 s with the long seeds:
# a number, then a run of blanks, in an RFCQuery body.
DI_BODIES_TIMEOUT = (
    b"RFC" + b" \t" * 44 + b"\t " * 25 + b"\t0" + b"\t " * 322 + b"\t*" + b"\t " * 148
    + b"7 A title with spaces peer-b 65401 7200x\nRFC 8 peer-c 1 0\r\n"
)


def test_index_body_found_by_the_fuzzer() -> None:
    assert hashlib.sha1(DI_BODIES_TIMEOUT).hexdigest().startswith("19ddd474")
    with bounded():
        parsed = di.parse_index(DI_BODIES_TIMEOUT)
    assert parsed == di.Parsed((di.IndexLine(8, "", "peer-c", 1, 0),), 1)


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
# UnicodeEncodeError instead of refusing the manifest. Found by swarm_manifest (the first
# input, as saved) and by swarm_client (the answer to MANIFEST, below).
SURROGATE_MANIFESTS = [
    b'{"format":2,"name":"\\udc00m","piece_size":3,"pieces":[],"size":0}',
    b'{"format":2,"name":"r\\ud800t","piece_size":16384,"pieces":['
    b'"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",'
    b'"4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",'
    b'"dbc1b4c900ffe48d575b5da5c638040125f65db0fe3e24494b76ea986457d986"],"size":40000}',
]


@pytest.mark.parametrize("data", SURROGATE_MANIFESTS, ids=["udc00", "ud800"])
@pytest.mark.parametrize("with_id", [False, True])
def test_manifest_with_a_lone_surrogate_name_is_refused(data: bytes, with_id: bool) -> None:
    expected = hashlib.sha256(data).hexdigest() if with_id else None
    with pytest.raises(RemoteProtocolError, match="file name"):
        Manifest.from_bytes(data, expected)


def test_manifest_answer_with_a_lone_surrogate_name_is_refused() -> None:
    """swarm_client's input: FILES then MANIFEST in flight, two answers (control byte cut)."""
    answers = (
        b"P2P-SWARM/1.0 200 OK\r\nContent-Length: 99\r\n\r\n"
        b"3637681c225cc1a1a22831ee6467586445a422b62f5012f009e85be98f851381 40000 16384 1 2 "
        b"1.500 0 rfc7.txt\r\n"
        b"P2P-SWARM/1.0 200 OK\r\nContent-Length: 274\r\n\r\n" + SURROGATE_MANIFESTS[1]
    )
    swarm = "3637681c225cc1a1a22831ee6467586445a422b62f5012f009e85be98f851381"
    client = sp.PipelinedClient(64 * 1024)
    for msg in (sp.ListFiles(), sp.GetManifest(swarm)):
        client.send(*sp.to_request(msg))
    client.receive_data(answers)
    files, manifest = client.next_answer(), client.next_answer()
    assert files is not None and manifest is not None
    assert [f.name for f in sp.decode_files(bytes(files[1]))] == ["rfc7.txt"]
    with pytest.raises(RemoteProtocolError, match="file name"):
        Manifest.from_bytes(bytes(manifest[1]))


# ------------------------------------------------------------------- swarm pipelining
# Not over the campaign's 2 s bound, but the slowest of swarm_client's inputs: the
# pipelined reader searched its whole buffer for the blank line again on every read, so a
# head sent one byte at a time cost O(n²) (a 16 KB head: 1.1 s of CPU; now 13 ms). It now
# reads heads as the codec does (``HeadReader`` over a ``ReceiveBuffer``).
class _CountingBytes(bytearray):
    """Stands for the receive buffer's bytes and counts the bytes each search may look at."""

    looked_at = 0

    def find(self, sub: object, start: int = 0, end: int | None = None) -> int:  # type: ignore[override]
        stop = len(self) if end is None else min(len(self), end)
        self.looked_at += max(0, stop - start)
        return super().find(sub, start, stop)  # type: ignore[arg-type]


def test_answer_head_sent_byte_by_byte_is_searched_in_linear_time() -> None:
    head = (b"P2P-SWARM/1.0 200 O" + b"K" * 8000 + b"\r\nY-Pad: " + b"a" * 8000
            + b"\r\nContent-Length: 2\r\n\r\n")  # a long first line too
    client = sp.PipelinedClient()
    counting = client._buf._data = _CountingBytes()
    client.send(*sp.to_request(sp.ListFiles()))
    for i in range(len(head)):
        client.receive_data(head[i:i + 1])
        assert client.next_answer() is None
    client.receive_data(b"ok")
    answer = client.next_answer()
    assert answer is not None and answer[1] == b"ok"
    assert counting.looked_at < 4 * len(head)
