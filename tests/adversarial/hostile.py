"""A hostile client: sends raw bytes and reports what came back and how the connection ended.

Strategy: a case is the bytes one connection sends (and whether it then half-closes, for
truncated messages). ``Outcome`` is what the server did: the status of its reply (None if
it sent none) and whether it kept the connection for another request or closed it. The
reader knows just enough of the three wire formats to find where a reply ends: a status
line, header lines, a blank line, then Content-Length bytes or, for a P2P-CI 200 to the
index (no Content-Length), data lines up to a blank line.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from dataclasses import dataclass

from p2pshare import limits

from ..aio import Raw
from ..helpers import DEADLINE

_STATUS = re.compile(rb"(P2P-[A-Z]+/\d+\.\d+) (\d{3})")


@dataclass(frozen=True, slots=True)
class Case:
    """Bytes one hostile connection sends; ``eof``: then it half-closes (a truncation);
    ``skip``: answers to well-formed requests at the start of ``data`` (each a 200)."""

    id: str
    data: bytes
    eof: bool = False
    skip: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the server did: its reply's status (None: no reply) and whether the same
    connection still answered a well-formed request afterwards (False: it was closed)."""

    status: int | None
    kept: bool


def closed(status: int | None = None) -> Outcome:
    return Outcome(status, False)


def kept(status: int) -> Outcome:
    return Outcome(status, True)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_reply(raw: Raw) -> Reply | None:
    """One whole reply, or None if the connection ended (closed or reset) before one."""
    try:
        async with asyncio.timeout(DEADLINE):
            first = await raw.reader.readline()
            m = _STATUS.match(first)
            if m is None:
                assert first == b"", f"not a status line: {first[:200]!r}"
                return None
            headers = {}
            while (line := await raw.reader.readline()).strip():
                name, _, value = line.decode("utf-8", "replace").partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                body = await raw.reader.readexactly(int(headers["content-length"]))
            elif m.group(1) == b"P2P-CI/1.0" and m.group(2) == b"200":
                body = b""
                while (line := await raw.reader.readline()).strip():
                    body += line
            else:
                body = b""
            return Reply(int(m.group(2)), headers, body)
    except (ConnectionError, asyncio.IncompleteReadError):
        return None


async def is_closed(raw: Raw) -> bool:
    """True once the server has closed the connection (reset included); False if it sends
    anything more."""
    try:
        return await raw.rest() == b""
    except ConnectionError:
        return True


async def send_case(raw: Raw, case: Case) -> None:
    """Send ``case``; the server may close before it has read everything (that is its
    right: the reply is then read, or its absence noted)."""
    with contextlib.suppress(ConnectionError):
        await raw.send(case.data)
        if case.eof:
            raw.writer.write_eof()


async def run_case(port: int, case: Case, follow: bytes | None) -> Outcome:
    """Send ``case`` on a new connection and see what happens.

    Args:
        follow: for servers that keep a connection open, a well-formed request sent after
            the reply; if its answer arrives, the connection was ``kept``.
    """
    raw = await Raw.connect(port)
    try:
        await send_case(raw, case)
        for _ in range(case.skip):
            before = await read_reply(raw)
            assert before is not None and before.status == 200, before
        reply = await read_reply(raw)
        status = None if reply is None else reply.status
        if reply is not None and follow is not None and not case.eof:
            with contextlib.suppress(ConnectionError):
                await raw.send(follow)
            if await read_reply(raw) is not None:
                return Outcome(status, True)
        assert await is_closed(raw), f"{case.id}: the server neither answered nor closed"
        return Outcome(status, False)
    finally:
        raw.writer.close()


# --------------------------------------------------------------------------- cases
def framing_cases(request: bytes) -> list[Case]:
    """Hostile framing around one well-formed ``request`` (a head ending in a blank line)
    of any protocol: what every server must survive the same way."""
    start, _, rest = request.partition(b"\r\n")
    head = request[: -2]  # without the final blank line
    rng = random.Random(6)
    return [
        Case("random-bytes", rng.randbytes(4096), eof=True),
        Case("random-printable", bytes(rng.choice(b"ABC xyz:/\t") for _ in range(3000))
             + b"\r\n\r\n"),
        Case("binary-no-line-end", b"\x00\xff\xfe\x80" * 64, eof=True),
        Case("non-utf8-head", start.replace(b" ", b"\xff\xfe ", 1) + b"\r\n" + rest),
        Case("nul-in-start-line", start + b"\x00\r\n" + rest),
        Case("nul-in-header", head + b"X-Evil: a\x00b\r\n\r\n"),
        Case("huge-start-line", b"A" * (limits.MAX_LINE + 100), eof=False),
        Case("huge-line-flood", b"A" * (40 * limits.MAX_LINE)),
        Case("huge-header", head + b"X-Big: " + b"v" * (2 * limits.MAX_LINE) + b"\r\n\r\n"),
        Case("many-headers", head + b"X-A: b\r\n" * (limits.MAX_HEADERS + 1) + b"\r\n"),
        Case("huge-head", head + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000)
                                          for i in range(limits.MAX_HEAD // 1000 + 1))
             + b"\r\n"),
        Case("negative-content-length", head + b"Content-Length: -5\r\n\r\n"),
        Case("enormous-content-length", head + b"Content-Length: " + b"9" * 30 + b"\r\n\r\n"),
        Case("over-max-body", head + b"Content-Length: %d\r\n\r\n"
             % (limits.MAX_REQUEST_BODY + 1)),
        Case("two-content-lengths", head + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        Case("header-without-colon", head + b"NoColonHere\r\n\r\n"),
        Case("truncated-start-line", start[: len(start) // 2], eof=True),
        Case("truncated-head", start + b"\r\n", eof=True),
        Case("truncated-body", head + b"Content-Length: 100\r\n\r\n0123456789", eof=True),
        Case("only-blank-lines", b"\r\n" * 1000, eof=True),
        Case("nothing", b"", eof=True),
    ]
