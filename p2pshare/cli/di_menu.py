"""The P2P-DI peer's menu: numbers or typed commands, from a terminal or a pipe.

Strategy: lines come from ``stdin.StdinLines`` (EOF means quit); each is parsed into a
``Command`` and run against the ``DIPeer``. The messages themselves are printed by the
peer's trace as they cross the wire (the handout: "print to the screen the format of the
messages they receive"); after each command one ``=>`` line sums up the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dipeer.peer import PEER_FAILURES, DIGetResult, DIPeer
from ..errors import Status
from ..host import join_hostport, split_hostport
from ..protocol import Response, di
from ..stdin import StdinLines
from ._run import say

MENU = """\
  1) register            register (again) with the RS   2) pquery      the active peers
  3) rfcquery [HOST:PORT] merge peers' RFC indexes      4) get <n>     download an RFC
  5) keepalive           reset our TTL at the RS        6) leave       leave the system
  7) index               show our RFC index             0) quit        leave and exit
Type a number or a command (e.g. "get 2345", "rfcquery 10.0.0.2:65500")."""

_WORDS = {"1": "register", "2": "pquery", "3": "rfcquery", "4": "get", "5": "keepalive",
          "6": "leave", "7": "index", "0": "quit", "exit": "quit", "q": "quit", "?": "help"}
_KNOWN = {"register", "pquery", "rfcquery", "get", "keepalive", "leave", "index", "quit",
          "help"}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    rfc: int | None = None
    peer: di.PeerAddr | None = None


def parse_command(line: str) -> Command | str:
    """A typed line -> Command, or a message saying what is wrong. Case-insensitive."""
    words = line.split()
    if not words:
        return ""
    name = _WORDS.get(words[0].lower(), words[0].lower())
    if name not in _KNOWN:
        return f"unknown command {words[0]!r} (type help)"
    if name == "get":
        if len(words) < 2 or not words[1].isdigit():
            return "get needs an RFC number, e.g. get 2345"
        return Command(name, rfc=int(words[1]))
    if name == "rfcquery" and len(words) > 1:
        try:
            host, port = split_hostport(words[1], 0)
        except ValueError:
            return "rfcquery takes HOST:PORT"
        if port == 0:
            return "rfcquery takes HOST:PORT"
        return Command(name, peer=di.PeerAddr(host, port))
    return Command(name)


async def run_menu(peer: DIPeer) -> None:
    """Read commands until quit or EOF."""
    lines = StdinLines()
    say(MENU)
    while (line := await lines.next()) is not None:
        command = parse_command(line)
        if isinstance(command, str):
            if command:
                say(command)
            continue
        if command.name == "quit":
            return
        try:
            await run_command(peer, command)
        except PEER_FAILURES as exc:
            say(f"=> failed: {exc}")


async def run_command(peer: DIPeer, cmd: Command) -> None:
    if cmd.name == "help":
        say(MENU)
    elif cmd.name == "register":
        reply = await peer.register()
        say(f"=> {_status(reply.response)}; cookie {peer.rs.cookie}, TTL {peer.rs.ttl} s")
    elif cmd.name == "keepalive":
        say(f"=> {_status((await peer.keep_alive()).response)}")
    elif cmd.name == "leave":
        say(f"=> {_status((await peer.leave()).response)}")
    elif cmd.name == "pquery":
        peers = await peer.pquery()
        say(f"=> {len(peers)} active peer(s)"
            + "".join(f"\n   {join_hostport(p.host, p.port)}" for p in peers))
    elif cmd.name == "rfcquery":
        await _rfcquery(peer, cmd.peer)
    elif cmd.name == "get" and cmd.rfc is not None:
        result = await peer.get(cmd.rfc)
        for step in result.steps:
            say(f"   {step}")
        got = result.fetched
        if result.already_local:
            say(f"=> RFC {cmd.rfc} is already in {peer.folder}")
        elif result.local_error is not None:
            say(f"=> RFC {cmd.rfc}: {result.local_error}")
        else:
            say(f"=> saved {got.path} ({got.size} bytes)" if got else
                f"=> RFC {cmd.rfc}: {not_got(result)}")
    elif cmd.name == "index":
        say(f"=> {len(peer.index)} record(s)" + "".join(
            f"\n   {line.to_line().decode()}" for line in peer.index.records()))


async def _rfcquery(peer: DIPeer, target: di.PeerAddr | None) -> None:
    targets = [target] if target is not None else await peer.pquery()
    for source in targets:
        try:
            merged = await peer.rfc_query(source)
        except PEER_FAILURES as exc:
            say(f"=> {join_hostport(source.host, source.port)}: {exc}")
            continue
        say(f"=> {join_hostport(source.host, source.port)}: {merged.added} new, {merged.refreshed} "
            f"refreshed; index now {len(peer.index)} record(s)")


def _status(resp: Response) -> str:
    return f"{resp.status} {resp.reason}" if resp.status != Status.OK else "200 OK"


def not_got(result: DIGetResult) -> str:
    """Why a download got nothing: no active peer's index names the RFC, or every holder
    that was asked failed (``result.steps`` says which)."""
    asked = any(step.startswith("GetRFC") for step in result.steps)
    return "no active peer could send it" if asked else "no active peer holds it"
