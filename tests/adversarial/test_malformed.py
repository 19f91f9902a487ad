"""Malformed and hostile input to every server: each case gets its status code, or a closed
connection, exactly as stated; afterwards the server still serves a well-behaved client.

Strategy: one table per server. The framing cases (``hostile.framing_cases``: random
bytes, truncations, huge lines and header counts, NUL bytes, non-UTF-8, bad
Content-Length) are the same for all six; then every field of each message is made wrong
in turn: methods, targets, versions, header values, negative and enormous numbers,
path-like values (``../``, absolute paths) where a name or number is expected, piece
indexes out of range. ``kept(s)``: status ``s`` and the connection goes on (persistent
index connections, for a well-framed request); ``closed(s)``: status ``s``, then the server
closes; ``closed()``: closed without a reply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pshare import limits

from ..aio import arun
from .hostile import Case, Outcome, closed, framing_cases, kept, run_case
from .targets import MANIFEST, TARGETS, Target

ID = MANIFEST.id
PATHS = ("../../etc/passwd", "/etc/passwd", "..", "rfc1.txt/../../x")


def message(start: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """A request head (and body): ``start`` line, ``headers`` in order, blank line."""
    lines = [start, *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def fields_wrong(start: str, good: dict[str, str], wrong: dict[str, list[str | None]]
                 ) -> Iterator[tuple[str, bytes]]:
    """The request ``start`` + ``good`` headers with one header at a time replaced by each
    of its ``wrong`` values (None: the header left out)."""
    for name, values in wrong.items():
        for value in values:
            headers = {k: v for k, v in good.items() if k != name}
            if value is not None:
                headers[name] = value
            yield f"{name}={value!r}", message(start, headers)


BAD_NUMBERS = ["", "x", "-1", "0", "+80", "0x50", "1e3", "80 80", "9" * 20, "9" * 400,
               *PATHS]


# ----------------------------------------------------------------------------- P2P-CI
def index_cases() -> Iterator[tuple[Case, Outcome]]:
    add = {"Host": "h.example", "Port": "1000", "Title": "A title"}
    for target in ("RFX 1", "RFC", "RFC x", "RFC -1", "RFC 0", "RFC 1000000", "RFC 1.5",
                   "RFC " + "9" * 20, *(f"RFC {p}" for p in PATHS), "RFC 1 2"):
        yield Case(f"ADD-target={target!r}", message(f"ADD {target} P2P-CI/1.0", add)), kept(400)
    for method in ("FROB", "ADDX", "POST", "../add"):
        yield Case(f"method={method!r}", message(f"{method} RFC 1 P2P-CI/1.0", add)), kept(400)
    for version in ("P2P-CI/2.0", "P2P-CI/0.9", "HTTP/1.1", "P2P-CI/1.0.0", "../1.0"):
        yield Case(f"version={version!r}", message(f"ADD RFC 1 {version}", add)), kept(505)
    wrong: dict[str, list[str | None]] = {
        "Host": [None, "", "a b", "h" * (limits.MAX_HOSTNAME + 1)],
        "Port": [None, *BAD_NUMBERS, "65536"],
        "Title": [None, "t" * (limits.MAX_TITLE + 1)],
    }
    for what, data in fields_wrong("ADD RFC 1 P2P-CI/1.0", add, wrong):
        yield Case(f"ADD-{what}", data), kept(400)
    # Names are opaque text to the index: a path-like host or title is stored as text.
    for name in ("Host", "Title"):
        yield Case(f"ADD-{name}-path", message("ADD RFC 1 P2P-CI/1.0",
                                               {**add, name: "../../etc/passwd"})), kept(200)
    yield Case("ADD-title-not-utf8", message("ADD RFC 1 P2P-CI/1.0", add).replace(
        b"A title", b"A \xff\xfe title")), kept(400)
    yield Case("LOOKUP-RFC-0", message("LOOKUP RFC 0 P2P-CI/1.0", {"Host": "h"})), kept(400)
    yield Case("LOOKUP-absent", message("LOOKUP RFC 77 P2P-CI/1.0", {"Host": "h"})), kept(404)
    yield Case("LIST-SOME", message("LIST SOME P2P-CI/1.0", {"Host": "h"})), kept(400)
    yield Case("GET-at-index", message("GET RFC 1 P2P-CI/1.0", {"Host": "h"})), kept(400)
    yield Case("REMOVE-bad-port", message("REMOVE RFC 1 P2P-CI/1.0",
                                          {"Host": "h", "Port": "-1"})), kept(400)
    yield Case("REMOVE-not-held", message("REMOVE RFC 1 P2P-CI/1.0",
                                          {"Host": "h", "Port": "1"})), kept(404)


def upload_cases() -> Iterator[tuple[Case, Outcome]]:
    get = {"Host": "h", "OS": "Linux"}
    for target in ("RFX 1", "RFC", "RFC x", "RFC -1", "RFC 0", "RFC 1000000",
                   "RFC " + "9" * 20, *(f"RFC {p}" for p in PATHS), "RFC 1 2"):
        yield Case(f"target={target!r}", message(f"GET {target} P2P-CI/1.0", get)), closed(400)
    yield Case("absent-rfc", message("GET RFC 2 P2P-CI/1.0", get)), closed(404)
    yield Case("directory-rfc", message("GET RFC 3 P2P-CI/1.0", get)), closed(404)
    for method in ("PUT", "ADD", "LIST", "../get"):
        yield Case(f"method={method!r}", message(f"{method} RFC 1 P2P-CI/1.0", get)), closed(400)
    for version in ("P2P-CI/2.0", "HTTP/1.1", "../1.0"):
        yield Case(f"version={version!r}", message(f"GET RFC 1 {version}", get)), closed(505)
    wrong: dict[str, list[str | None]] = {"Host": [None, ""], "OS": ["o" * (limits.MAX_OS + 1)]}
    for what, data in fields_wrong("GET RFC 1 P2P-CI/1.0", get, wrong):
        yield Case(what, data), closed(400)
    yield Case("OS-not-utf8", message("GET RFC 1 P2P-CI/1.0", get).replace(
        b"Linux", b"Li\xffnux")), closed(400)
    yield Case("leading-zeros", message("GET RFC 0001 P2P-CI/1.0", get)), closed(200)
    yield Case("body-is-drained", message("GET RFC 1 P2P-CI/1.0", {**get, "Content-Length": "5"},
                                          b"hello")), closed(200)


# ----------------------------------------------------------------------------- P2P-DI
def rs_cases() -> Iterator[tuple[Case, Outcome]]:
    reg = {"Host": "h.example", "Port": "1000"}
    wrong: dict[str, list[str | None]] = {
        "Host": [None, "", "a b", "h" * (limits.MAX_HOSTNAME + 1)],
        "Port": [None, *BAD_NUMBERS, "65536"],
        "Cookie": [*BAD_NUMBERS, str(2**63)],
        "OS": ["o" * (limits.MAX_OS + 1)],
    }
    for what, data in fields_wrong("REGISTER PEER P2P-DI/1.0", reg, wrong):
        yield Case(f"REGISTER-{what}", data), closed(400)
    yield Case("REGISTER-host-path", message("REGISTER PEER P2P-DI/1.0",
                                             {**reg, "Host": "../../etc"})), closed(200)
    yield Case("REGISTER-unknown-cookie", message("REGISTER PEER P2P-DI/1.0",
                                                  {**reg, "Cookie": "12345"})), closed(409)
    for method in ("KEEPALIVE", "LEAVE"):
        start = f"{method} PEER P2P-DI/1.0"
        yield Case(f"{method}-no-cookie", message(start, {"Host": "h"})), closed(400)
        for cookie in ("-1", "0", "x", "9" * 20, "../1"):
            yield Case(f"{method}-cookie={cookie!r}",
                       message(start, {"Host": "h", "Cookie": cookie})), closed(400)
        yield Case(f"{method}-unknown-cookie",
                   message(start, {"Host": "h", "Cookie": "12345"})), closed(409)
    yield Case("PQUERY-bad-cookie", message("PQUERY ALL P2P-DI/1.0",
                                            {"Host": "h", "Cookie": "-3"})), closed(400)
    yield Case("PQUERY-nobody", message("PQUERY ALL P2P-DI/1.0", {"Host": "h"})), closed(404)
    for start in ("REGISTER ALL P2P-DI/1.0", "PQUERY PEER P2P-DI/1.0", "FROB PEER P2P-DI/1.0",
                  "REGISTER ../../etc/passwd P2P-DI/1.0", "GET RFC-INDEX P2P-DI/1.0",
                  "GET RFC 1 P2P-DI/1.0"):
        yield Case(f"start={start!r}", message(start, reg)), closed(400)
    for version in ("P2P-DI/2.0", "P2P-CI/1.0", "../1.0"):
        yield Case(f"version={version!r}", message(f"REGISTER PEER {version}", reg)), closed(505)


def rfc_cases() -> Iterator[tuple[Case, Outcome]]:
    host = {"Host": "h"}
    for target in ("RFC", "RFC x", "RFC -1", "RFC 0", "RFC 1000000", "RFC " + "9" * 20,
                   *(f"RFC {p}" for p in PATHS), "RFC-INDEX/../x", "RFC 1 2"):
        yield Case(f"target={target!r}", message(f"GET {target} P2P-DI/1.0", host)), closed(400)
    yield Case("absent-rfc", message("GET RFC 2 P2P-DI/1.0", host)), closed(404)
    yield Case("directory-rfc", message("GET RFC 3 P2P-DI/1.0", host)), closed(404)
    for start in ("REGISTER PEER P2P-DI/1.0", "PQUERY ALL P2P-DI/1.0", "PUT RFC 1 P2P-DI/1.0"):
        yield Case(f"start={start!r}", message(start, {**host, "Port": "1",
                                                       "Cookie": "1"})), closed(400)
    for version in ("P2P-DI/2.0", "P2P-CI/1.0"):
        yield Case(f"version={version!r}", message(f"GET RFC 1 {version}", host)), closed(505)
    for what, data in fields_wrong("GET RFC 1 P2P-DI/1.0", host, {
            "Host": [None, "", "a b"], "OS": ["o" * (limits.MAX_OS + 1)]}):
        yield Case(what, data), closed(400)


# ----------------------------------------------------------------------------- swarm
def announce(swarm: str = ID, body: bytes = MANIFEST.to_bytes(),
             headers: dict[str, str] | None = None) -> bytes:
    head = {"Host": "h.example", "Port": "1000", **(headers or {})}
    head["Content-Length"] = str(len(body))
    return message(f"ANNOUNCE {swarm} P2P-SWARM/1.0", {k: v for k, v in head.items() if v},
                   body)


def forged(**changes: object) -> bytes:
    """Manifest bytes with ``changes``, in canonical form (so that the id matches them)."""
    obj = json.loads(MANIFEST.to_bytes())
    obj.update(changes)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def have(text: str) -> bytes:
    body = text.encode("utf-8", "surrogateescape")
    return message(f"HAVE {ID} P2P-SWARM/1.0", {"Content-Length": str(len(body))}, body)


def tracker_cases() -> Iterator[tuple[Case, Outcome]]:
    for swarm in ("z" * 64, ID[:63], ID.upper(), ID + "0", *PATHS):
        yield Case(f"ANNOUNCE-id={swarm[:20]!r}", announce(swarm)), kept(400)
    for name in ("Host", "Port"):
        for value in ([None, "a b"] if name == "Host" else [None, *BAD_NUMBERS[1:], "65536"]):
            yield Case(f"ANNOUNCE-{name}={value!r}", announce(headers={name: value or ""})), \
                kept(400)
    for what, body in (("not-json", b"{"), ("not-utf8", b"\xff" * 10), ("empty", b""),
                       ("other-content", forged(pieces=["00" * 32] * MANIFEST.count))):
        yield Case(f"ANNOUNCE-body-{what}", announce(body=body)), kept(400)
    # A forged manifest under its own (matching) id: refused for what it says.
    forgeries: list[tuple[str, object]] = [
        ("name", "../evil"), ("name", "/etc/passwd"), ("name", "a\x00b"), ("name", ".."),
        ("name", ""), ("piece_size", -1), ("piece_size", 2**70), ("size", -5),
        ("size", 10**30), ("pieces", []), ("format", 1)]
    for field, forgery in forgeries:
        body = forged(**{field: forgery})
        swarm = hashlib.sha256(body).hexdigest()
        yield Case(f"ANNOUNCE-{field}={forgery!r}", announce(swarm, body)), kept(400)
    joined = announce()
    for text, status in (("5", 400), ("0-5", 400), ("-1", 400), ("9" * 20, 400),
                         ("9" * 5000, 400), ("3-1", 400), ("0,,1", 400), ("a", 400),
                         ("\udcff", 400), ("../1", 400), ("0-4", 200)):
        yield Case(f"HAVE={text[:20]!r}", joined + have(text), skip=1), kept(status)
    yield Case("HAVE-before-ANNOUNCE", have("0")), kept(404)
    yield Case("PEERS-unknown", message(f"PEERS {'0' * 64} P2P-SWARM/1.0")), kept(404)
    yield Case("PEERS-bad-id", message("PEERS ../../etc/passwd P2P-SWARM/1.0")), kept(400)
    yield Case("MANIFEST-unknown", message(f"MANIFEST {'0' * 64} P2P-SWARM/1.0")), kept(404)
    yield Case("PIECE-at-tracker", message(f"PIECE {ID} 0 P2P-SWARM/1.0")), kept(400)
    yield Case("FILES-SOME", message("FILES SOME P2P-SWARM/1.0")), kept(400)
    yield Case("method=FROB", message(f"FROB {ID} P2P-SWARM/1.0")), kept(400)
    yield Case("version=P2P-SWARM/2.0", message("FILES ALL P2P-SWARM/2.0")), kept(505)


def piece_cases() -> Iterator[tuple[Case, Outcome]]:
    for index, status in (("5", 404), (str(limits.MAX_PIECES - 1), 404),
                          (str(limits.MAX_PIECES), 400), ("-1", 400), (str(2**64), 400),
                          ("9" * 400, 400), ("", 400), ("x", 400), ("1.0", 400),
                          *((p, 400) for p in PATHS)):
        yield Case(f"PIECE-index={index[:20]!r}",
                   message(f"PIECE {ID} {index} P2P-SWARM/1.0")), kept(status)
    for swarm, status in (("0" * 64, 404), (ID.upper(), 400), (ID[:10], 400),
                          *((p, 400) for p in PATHS)):
        yield Case(f"PIECE-id={swarm[:20]!r}", message(f"PIECE {swarm} 0 P2P-SWARM/1.0")), \
            kept(status)
    yield Case("MANIFEST-unknown", message(f"MANIFEST {'0' * 64} P2P-SWARM/1.0")), kept(404)
    yield Case("MANIFEST-path", message("MANIFEST ../data.bin P2P-SWARM/1.0")), kept(400)
    for start in ("FILES ALL", f"ANNOUNCE {ID}", f"PEERS {ID}", f"FROB {ID} 0"):
        yield Case(f"start={start[:20]!r}", message(f"{start} P2P-SWARM/1.0")), kept(400)
    yield Case("version=P2P-SWARM/2.0", message(f"PIECE {ID} 0 P2P-SWARM/2.0")), kept(505)


FIELD_CASES = {"index": index_cases, "upload": upload_cases, "rs": rs_cases,
               "rfc": rfc_cases, "tracker": tracker_cases, "pieces": piece_cases}

# The framing cases: what each server does (one-exchange servers always close after).
FRAMING = {
    "random-bytes": closed(400),
    "random-printable": kept(505),
    "binary-no-line-end": closed(400),
    "non-utf8-head": kept(400),
    "nul-in-start-line": closed(400),
    "nul-in-header": closed(400),
    "huge-start-line": closed(400),
    "huge-line-flood": closed(400),
    "huge-header": closed(400),
    "many-headers": closed(400),
    "huge-head": closed(400),
    "negative-content-length": closed(400),
    "enormous-content-length": closed(400),
    "over-max-body": closed(400),
    "two-content-lengths": closed(400),
    "header-without-colon": closed(400),
    "truncated-start-line": closed(400),
    "truncated-head": closed(400),
    "truncated-body": closed(400),
    "only-blank-lines": closed(),
    "nothing": closed(),
}


def all_cases() -> Iterator[object]:
    for name, target in TARGETS.items():
        for case in framing_cases(target.request):
            expected = FRAMING[case.id]
            if target.follow is None:
                expected = closed(expected.status)
            yield pytest.param(target, case, expected, id=f"{name}-{case.id}")
        for case, expected in FIELD_CASES[name]():
            if target.follow is None:
                expected = closed(expected.status)
            yield pytest.param(target, case, expected, id=f"{name}-{case.id}")


@pytest.mark.parametrize(("target", "case", "expected"), list(all_cases()))
@arun
async def test_hostile_input(tmp_path: Path, target: Target, case: Case,
                             expected: Outcome) -> None:
    async with target.start(tmp_path) as port:
        assert await run_case(port, case, target.follow) == expected
        await target.probe(port, tmp_path)
