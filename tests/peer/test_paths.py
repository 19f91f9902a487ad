"""The shared folder: RFC file names, safe paths, and where titles come from."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from p2pshare import limits
from p2pshare.peer import paths
from p2pshare.protocol import ci
from p2pshare.samples import sample_text, write_sample_rfcs

from ..aio import arun
from ..helpers import DEADLINE

# The first pages of real RFCs, as the RFC Editor publishes them (header block, title).
RFC_2616 = """\
Network Working Group                                      R. Fielding
Request for Comments: 2616                                   UC Irvine
Obsoletes: 2068                                                J. Gettys
Category: Standards Track                                   Compaq/W3C
                                                              June 1999


                Hypertext Transfer Protocol -- HTTP/1.1

Status of this Memo

   This document specifies an Internet standards track protocol for the
"""
RFC_7230 = """\
Internet Engineering Task Force (IETF)                  R. Fielding, Ed.
Request for Comments: 7230                                         Adobe
Obsoletes: 2145, 2616                                    J. Reschke, Ed.
Category: Standards Track                                     greenbytes
ISSN: 2070-1721                                                June 2014


   Hypertext Transfer Protocol (HTTP/1.1): Message Syntax and Routing

Abstract
"""
RFC_8446 = """\
Internet Engineering Task Force (IETF)                       E. Rescorla
Request for Comments: 8446                                       Mozilla
Obsoletes: 5077, 5246, 6961                                  August 2018
Updates: 5705, 6066
Category: Standards Track
ISSN: 2070-1721


        The Transport Layer Security (TLS) Protocol Version 1.3

Abstract
"""
RFC_791 = "\n\nRFC:  791\n" + " " * 36 + "\n" * 3 + """\
                           INTERNET PROTOCOL
                                    \n
                         DARPA INTERNET PROGRAM
                                    \n
                         PROTOCOL SPECIFICATION
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.replace("\n", "\r\n").encode())
    return path


@pytest.mark.parametrize(("name", "number"), [
    ("rfc123.txt", 123), ("RFC9110.TXT", 9110), ("rfc1.txt", 1),
    ("rfc0.txt", None), ("rfc1234567.txt", None), ("rfc12.txt.bak", None), ("xrfc1.txt", None),
    ("rfc.txt", None), (".rfc12.txt.abcd.part", None), ("rfc-1.txt", None),
])
def test_rfc_number(name: str, number: int | None) -> None:
    assert paths.rfc_number(name) == number


@pytest.mark.parametrize(("text", "title"), [
    (RFC_2616, "Hypertext Transfer Protocol -- HTTP/1.1"),
    (RFC_7230, "Hypertext Transfer Protocol (HTTP/1.1): Message Syntax and Routing"),
    (RFC_8446, "The Transport Layer Security (TLS) Protocol Version 1.3"),
    (RFC_791, "INTERNET PROTOCOL"),
    ("My notes on TCP\n\nA much longer body of text follows here.\n", "My notes on TCP"),
    ("\n\n   \n  Indented   first\tline  \nmore\n", "Indented first line"),
    ("x" * (paths.SHORT_LINE + 1) + "\nshort\n", "RFC 42"),
    ("", "RFC 42"),
])
def test_title_from_text(tmp_path: Path, text: str, title: str) -> None:
    assert paths.title_of(write(tmp_path, "rfc42.txt", text), 42) == title


@pytest.mark.parametrize("data", [bytes(range(256)) * 100, bytes(range(128, 256)) * 8,
                                  "Résumé of RFC 42".encode("latin-1")])
def test_title_of_binary_is_printable_bounded_and_accepted(tmp_path: Path, data: bytes) -> None:
    """Bytes that are not UTF-8 must not reach the title as U+FFFD: the index server
    refuses such an ADD (400), and the peer would retry it for ever."""
    title = paths.title_of(write(tmp_path, "rfc42.txt", data), 42)
    assert title and title.isprintable() and len(title) <= limits.MAX_TITLE
    assert "\ufffd" not in title
    add = ci.to_event(ci.CIRequest(ci.Method.ADD, 42, "h", 1, title))
    assert isinstance(ci.interpret(add), ci.CIRequest)


def test_title_of_latin_1_text_keeps_its_letters(tmp_path: Path) -> None:
    path = write(tmp_path, "rfc42.txt", "Résumé of RFC 42\n\nBody".encode("latin-1"))
    assert paths.title_of(path, 42) == "Résumé of RFC 42"


def test_title_of_utf_8_cut_inside_a_character(tmp_path: Path) -> None:
    first = "Ünïcode title!\n".encode()
    assert len(first) % 2 == 1  # so the read of HEAD_BYTES ends inside a two-byte "é"
    text = first + "é".encode() * paths.HEAD_BYTES
    assert paths.title_of(write(tmp_path, "rfc42.txt", text), 42) == "Ünïcode title!"


@pytest.mark.parametrize(("raw", "clean"), [
    ("  A\tB  \x00 C\x7f", "A B C"),
    ("x" * (limits.MAX_TITLE - 1) + " yz", "x" * (limits.MAX_TITLE - 1)),
    ("\x01\x02", ""),
    ("a\ufffdb", "a b"),
])
def test_clean_title(raw: str, clean: str) -> None:
    assert paths.clean_title(raw) == clean


def test_sample_files_have_parsable_titles(tmp_path: Path) -> None:
    written = write_sample_rfcs(tmp_path, {123: 6_000, 2345: 500, 5555: 100})
    assert paths.scan(tmp_path) == {123: "A Proferred Official ICP",
                                    2345: "Domain Names and Company Name Retrieval",
                                    5555: "Sample Protocol Extensions, Part 5555"}
    assert written[123].read_bytes() == sample_text(123, 6_000)


def test_titles_file_wins(tmp_path: Path) -> None:
    write(tmp_path, "rfc2616.txt", RFC_2616)
    write(tmp_path, "rfc1.txt", "first line title\n")
    write(tmp_path, "rfc2.txt", "")
    write(tmp_path, "rfc3.txt", "")
    write(tmp_path, "rfc4.txt", "")
    write(tmp_path, paths.TITLES_FILE, "2616 HTTP One Point One\n"
          "RFC 2: Colon   Separated\n"
          "3\tTab Separated\n"
          "not a line for any rfc\n"
          "99 Not In The Folder\n")
    assert paths.scan(tmp_path) == {1: "first line title", 2: "Colon Separated",
                                    3: "Tab Separated", 4: "RFC 4",
                                    2616: "HTTP One Point One"}


def test_scan_ignores_what_is_not_an_rfc_file(tmp_path: Path) -> None:
    write(tmp_path, "rfc1.txt", "One\n")
    write(tmp_path, "notes.txt", "x\n")
    write(tmp_path, ".rfc2.txt.x1y2.part", "partial download\n")
    (tmp_path / "rfc3.txt").mkdir()
    (tmp_path / "rfc4.txt").symlink_to(tmp_path / "missing")
    assert paths.scan(tmp_path) == {1: "One"}


def test_resolve_rfc_stays_inside_the_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    write(tmp_path, "outside.txt", "secret\n")
    inside = write(shared, "rfc1.txt", "One\n")
    (shared / "rfc2.txt").symlink_to(tmp_path / "outside.txt")
    (shared / "rfc3.txt").symlink_to(inside)  # a link within the folder is fine
    assert paths.resolve_rfc(shared, 1) == inside.resolve()
    assert paths.resolve_rfc(shared, 2) is None
    assert paths.resolve_rfc(shared, 3) == inside.resolve()
    assert paths.resolve_rfc(shared, 4) is None
    assert paths.resolve_rfc(shared, 0) is None
    assert paths.resolve_rfc(shared, limits.MAX_RFC_NUMBER + 1) is None



class _Watch(paths.FolderWatch):
    """A folder watch that notes the thread each look runs in."""

    threads: list[int] = []

    def changes(self) -> tuple[dict[int, str], set[int]]:
        self.threads.append(threading.get_ident())
        return super().changes()


@arun
async def test_folder_rescans_run_off_the_event_loop(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Listing a folder of 100,000 RFCs takes seconds: the peer's upload server and index
    # connection, on the event loop, must not stop meanwhile.
    monkeypatch.setattr(limits, "FOLDER_RESCAN_INTERVAL", 0.01)
    (tmp_path / "rfc1.txt").write_text("One\n")
    seen = asyncio.Event()

    async def changed(added: dict[int, str], removed: set[int]) -> None:
        seen.set()

    task = asyncio.create_task(paths.follow(_Watch(tmp_path), changed))
    try:
        await asyncio.wait_for(seen.wait(), DEADLINE)
    finally:
        task.cancel()
    assert _Watch.threads and threading.get_ident() not in _Watch.threads
