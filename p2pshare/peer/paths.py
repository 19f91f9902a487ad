"""The shared folder: which RFC files a peer has, their titles, and safe paths into it.

Strategy: an RFC is the file ``rfc<N>.txt`` directly inside the folder; the name is built
from an integer, so no request can name another path, and ``resolve_rfc`` also refuses a
symlink that leads outside the folder and anything that is not a regular file.

Titles come, in order of preference, from ``titles.txt`` in the folder (lines
``<number> <title>``, a tab, colon or spaces between), from the RFC text (the title lines
that follow the header block of a real RFC's first page; or, for a file that is not a
formatted RFC, its first non-empty line when that is short), else ``RFC <N>``.

A running peer follows its folder with a ``FolderWatch``: a look costs one ``stat`` while
the folder's modification time stands still (and is older than ``limits.FOLDER_SETTLE``);
otherwise the folder is listed and only the files not seen before are read for a title.
``follow`` looks in a worker thread, so that the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from .. import limits

log = logging.getLogger(__name__)

TITLES_FILE = "titles.txt"
_RFC_NAME = re.compile(r"rfc(\d{1,6})\.txt\Z", re.I)
_TITLES_LINE = re.compile(r"\s*(?:RFC\s*)?(\d{1,6})\s*[:\t ]\s*(.+?)\s*\Z", re.I)
# "Request for Comments: N" in the header block; the oldest RFCs (791, 793) say "RFC:  N".
_HEADER_MARK = re.compile(r"Request for Comments\s*:|^\s*RFC\s*:\s*\d", re.I)
_NOT_TITLE = re.compile(r"(abstract|status of this memo|copyright notice|table of contents)\Z",
                        re.I)
SHORT_LINE = 100  # a first line longer than this is text, not a title
HEAD_BYTES = 16 * limits.KiB  # how much of a file is read to find its title


def rfc_filename(rfc: int) -> str:
    return f"rfc{rfc}.txt"


def rfc_number(name: str) -> int | None:
    m = _RFC_NAME.match(name)
    if m is None:
        return None
    n = int(m.group(1))
    return n if limits.MIN_RFC_NUMBER <= n <= limits.MAX_RFC_NUMBER else None


def resolve_rfc(folder: Path, rfc: int) -> Path | None:
    """The path of RFC ``rfc`` if it is a regular file truly inside ``folder``, else None."""
    if not limits.MIN_RFC_NUMBER <= rfc <= limits.MAX_RFC_NUMBER:
        return None
    root = folder.resolve()
    path = (root / rfc_filename(rfc)).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


def scan(folder: Path, skip: Iterable[int] = ()) -> dict[int, str]:
    """Every RFC in ``folder`` with its title, by number (those in ``skip`` left out)."""
    return titled(folder, rfcs_in(folder) - set(skip))


def rfcs_in(folder: Path) -> set[int]:
    """The numbers of the RFC files in ``folder`` (regular files inside it)."""
    names = (rfc_number(e.name) for e in os.scandir(folder))
    return {n for n in names if n is not None and resolve_rfc(folder, n) is not None}


def titled(folder: Path, rfcs: Iterable[int]) -> dict[int, str]:
    """The title of each of ``rfcs`` in ``folder`` (``titles.txt`` first), by number."""
    numbers = sorted(rfcs)
    titles = read_titles_file(folder) if numbers else {}
    found: dict[int, str] = {}
    for rfc in numbers:
        path = resolve_rfc(folder, rfc)
        if path is not None:
            found[rfc] = titles.get(rfc) or title_of(path, rfc)
    return found


class FolderWatch:
    """The RFC files that came and went in ``folder`` since the last look (module text).

    Args:
        known: the RFCs already accounted for (e.g. registered at start-up).
    """

    def __init__(self, folder: Path, known: Iterable[int] = ()) -> None:
        self.folder = folder
        self.known = set(known)
        self._stamp: int | None = None  # the folder's st_mtime_ns at the last listing

    def changes(self) -> tuple[dict[int, str], set[int]]:
        """The RFCs added (with titles) and removed since the last look.

        Raises:
            OSError: the folder cannot be read.
        """
        stamp = os.stat(self.folder).st_mtime_ns
        settled = time.time_ns() - stamp > limits.FOLDER_SETTLE * 1e9
        if stamp == self._stamp and settled:
            return {}, set()
        self._stamp = stamp
        now = rfcs_in(self.folder)
        added, removed = titled(self.folder, now - self.known), self.known - now
        self.known = (self.known - removed) | set(added)
        return added, removed


def read_titles_file(folder: Path) -> dict[int, str]:
    path = folder / TITLES_FILE
    if not path.is_file():
        return {}
    titles = {}
    for line in path.read_text("utf-8", errors="replace").splitlines():
        m = _TITLES_LINE.match(line)
        if m:
            titles[int(m.group(1))] = clean_title(m.group(2))
    return titles


def title_of(path: Path, rfc: int) -> str:
    """The title of the RFC text in ``path`` (see module doc), never empty."""
    try:
        with open(path, "rb") as handle:
            head = _decode(handle.read(HEAD_BYTES))
    except OSError:
        return f"RFC {rfc}"
    lines = head.replace("\r\n", "\n").split("\n")
    return title_from_rfc_page(lines) or _first_short_line(lines) or f"RFC {rfc}"


def _decode(raw: bytes) -> str:
    """UTF-8 when the bytes are (a character cut off at the end aside), else Latin-1, which
    gives every byte a character: never U+FFFD, which the index server refuses in a title."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            return raw[:exc.start].decode("utf-8")
        return raw.decode("latin-1")


def title_from_rfc_page(lines: list[str]) -> str | None:
    """The centred title after a real RFC's header block, or None."""
    mark = next((i for i, line in enumerate(lines[:40]) if _HEADER_MARK.search(line)), None)
    if mark is None:
        return None
    i = mark
    while i < len(lines) and lines[i].strip():  # the rest of the header block
        i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    title: list[str] = []
    while i < len(lines) and lines[i].strip() and len(title) < 4:
        title.append(lines[i].strip())
        i += 1
    text = clean_title(" ".join(title))
    return text if text and not _NOT_TITLE.match(text) else None


def _first_short_line(lines: list[str]) -> str | None:
    first = next((line.strip() for line in lines if line.strip()), "")
    return clean_title(first) if 0 < len(first) <= SHORT_LINE else None


def clean_title(text: str) -> str:
    """Fold white space, control characters (tabs too) and U+FFFD (bytes that were not
    UTF-8) to single spaces; cut to ``MAX_TITLE``."""
    text = "".join(c if c.isprintable() and c != "\ufffd" else " " for c in text)
    return " ".join(text.split())[: limits.MAX_TITLE].rstrip()



Changed = Callable[[dict[int, str], set[int]], Awaitable[None]]


async def follow(watch: FolderWatch, changed: Changed) -> None:
    """Run until cancelled: every ``limits.FOLDER_RESCAN_INTERVAL``, call ``changed`` with
    the RFCs added (with titles) and removed, when any were."""
    while True:
        await asyncio.sleep(limits.FOLDER_RESCAN_INTERVAL)  # a period, not a sync
        try:
            # In a thread: listing a big folder takes seconds, and the loop serves uploads.
            added, removed = await asyncio.to_thread(watch.changes)
        except OSError as exc:
            log.warning("[Peer] cannot read %s: %s", watch.folder, exc)
            continue
        for rfc in sorted(removed):
            log.info("[Peer] RFC %d left the folder: no longer served", rfc)
        if added or removed:
            await changed(added, removed)
