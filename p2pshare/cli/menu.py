"""The interactive peer menu: numbers or typed commands, from a terminal or a pipe.

Strategy: lines come from ``stdin.StdinLines`` (a daemon thread: the event loop never
blocks, and a quiet terminal never keeps the process alive at exit); each line is parsed
into a ``Command`` and run against the ``Peer``. EOF means quit. Every request and
response is printed exactly as it crossed the wire, as the handout asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import P2PError
from ..host import join_hostport
from ..peer import paths
from ..peer.client import P2SReply
from ..peer.node import Peer
from ..protocol import Request, ci
from ..stdin import StdinLines
from .text import shown, shown_lines

MENU = """\
  1) ADD <n>       announce a local RFC        2) LOOKUP <n>   who has an RFC
  3) LIST          the whole index             4) GET <n>      download an RFC
  5) REMOVE <n>    withdraw our record         6) BAD          send a malformed request (400)
  7) VERSION       send P2P-CI/2.0 (505)       0) EXIT         leave the system
Type a number or a command (list, lookup 123, get 123, add 123, remove 123, quit)."""

_WORDS = {"1": "add", "2": "lookup", "3": "list", "4": "get", "5": "remove", "6": "bad",
          "7": "version", "0": "quit", "exit": "quit", "q": "quit", "help": "help", "?": "help"}
_NEEDS_NUMBER = {"add", "lookup", "get", "remove"}
_KNOWN = {*_NEEDS_NUMBER, "list", "bad", "version", "quit", "help"}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    rfc: int | None = None
    title: str | None = None


def parse_command(line: str) -> Command | str:
    """A typed line -> Command, or an error message. Case-insensitive."""
    words = line.split()
    if not words:
        return "empty line"
    name = _WORDS.get(words[0].lower(), words[0].lower())
    if name not in _KNOWN:
        return f"unknown command {words[0]!r} (type help)"
    if name not in _NEEDS_NUMBER:
        return Command(name)
    if len(words) < 2:
        return Command(name, None)  # the number follows on the next line
    if not words[1].isdigit():
        return f"{name} needs an RFC number"
    return Command(name, int(words[1]), " ".join(words[2:]) or None)


def print_wire(direction: str, data: bytes) -> None:
    """Print bytes as they crossed the wire, CRLF shown as line breaks."""
    label = ">>> sent" if direction == ">" else "<<< received"
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    print(f"{label}\n{shown_lines(text)}", end="" if text.endswith("\n") else "\n", flush=True)


async def run_menu(peer: Peer) -> None:
    """Read commands until quit or EOF."""
    lines = StdinLines()
    print(MENU, flush=True)
    pending: str | None = None  # a command waiting for its RFC number
    while (line := await lines.next()) is not None:
        if pending is not None:
            line, pending = f"{pending} {line}", None
        command = parse_command(line)
        if isinstance(command, str):
            if command != "empty line":
                print(command, flush=True)
            continue
        if command.name in _NEEDS_NUMBER and command.rfc is None:
            pending = command.name
            print("RFC number?", flush=True)
            continue
        if command.name == "quit":
            return
        try:
            await run_command(peer, command)
        except P2PError as exc:
            print(f"error: {shown(str(exc))}", flush=True)


async def run_command(peer: Peer, cmd: Command) -> None:
    assert peer.index is not None
    index = peer.index
    if cmd.name == "help":
        print(MENU, flush=True)
    elif cmd.name == "list":
        report(await index.list_all())
    elif cmd.name == "lookup":
        report(await index.lookup(_rfc(cmd), cmd.title))
    elif cmd.name == "add":
        title = paths.scan(peer.folder).get(_rfc(cmd))
        if title is None:
            print(f"no {paths.rfc_filename(_rfc(cmd))} in {peer.folder}", flush=True)
        else:
            report(await index.add(_rfc(cmd), cmd.title or title))
    elif cmd.name == "remove":
        report(await index.remove(_rfc(cmd)))
    elif cmd.name == "get":
        await _get(peer, _rfc(cmd))
    elif cmd.name == "bad":
        report(await index.exchange(Request("LIST", "EVERYTHING", ci.VERSION,
                                            (("Host", index.me_host),))))
    elif cmd.name == "version":
        report(await index.exchange(Request("LIST", "ALL", "P2P-CI/2.0",
                                            (("Host", index.me_host),))))


def _rfc(cmd: Command) -> int:
    assert cmd.rfc is not None
    return cmd.rfc


def report(reply: P2SReply) -> None:
    print(f"=> {reply.status} {shown(reply.reason)}: {len(reply.records)} record(s)", flush=True)


async def _get(peer: Peer, rfc: int) -> None:
    result = await peer.get(rfc)
    if result.download is None:
        report(result.lookup)
        return
    for holder, outcome in result.download.attempts:
        print(shown(f"   {join_hostport(holder.host, holder.port)} -> {outcome}"), flush=True)
    if result.download.local_error is not None:
        print(f"=> RFC {rfc}: {shown(result.download.local_error)}", flush=True)
    elif not result.download.attempts:  # the index names this peer alone
        print(f"=> RFC {rfc}: no other peer holds it", flush=True)
    elif result.download.path is None:
        print(f"=> RFC {rfc}: no holder could send it", flush=True)
    else:
        print(f"=> saved {result.download.path} ({result.download.size} bytes)", flush=True)
