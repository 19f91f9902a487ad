"""Options every command spells the same way (docs/cli.md#options), and their types.

Strategy: one function adds each shared option, so ``--out``, ``--listen``, ``--advertise``,
``--port`` and ``--timeout`` mean one thing in every command. An old spelling of an option
stays accepted as a hidden alias (same ``dest``, ``help=argparse.SUPPRESS``), so old
scripts keep working while ``--help``, the docs and the completion show only the new one.
Help texts show ``%(default)s``: the default in effect after the configuration file and
environment (``config``) have set it; ``HelpFormatter`` shows a default of None (no limit)
as ``none``.
"""

from __future__ import annotations

import argparse
import copy
import re
from collections.abc import Callable
from pathlib import Path

from .. import limits
from ..errors import P2PError
from ..host import parse_port, split_hostport, valid_host

# The index server's well-known port (docs/p2p-ci.md#well-known-port); here, not in
# ci_cmds, so that the swarm commands need not import the P2P-CI ones at start-up.
INDEX_PORT = 7734


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every sub-command's help: the epilog as written, a default of None shown as
    ``none`` (``--timeout``, the rates), so a configured value and no value read alike."""

    def _expand_help(self, action: argparse.Action) -> str:
        if action.default is None:
            action = copy.copy(action)
            action.default = "none"
        return super()._expand_help(action)


def address_arg(default_port: int) -> Callable[[str], tuple[str, int]]:
    """An argparse type for ``HOST[:PORT]`` (``[v6]:PORT`` too) with ``default_port``."""
    def address(text: str) -> tuple[str, int]:
        try:
            host, port = split_hostport(text, default_port)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not HOST[:PORT]: {text!r}") from None
        if not valid_host(host):  # '::1:7734', 'a b': said now, not as a failed look-up
            hint = " (an IPv6 address with a port is written [ADDR]:PORT)" \
                if ":" in host and not text.startswith("[") else ""
            raise argparse.ArgumentTypeError(f"not HOST[:PORT]: {text!r}{hint}")
        return host, port
    return address


def addresses_arg(default_port: int) -> Callable[[str], list[tuple[str, int]]]:
    """An argparse type for ``HOST[:PORT],HOST[:PORT],...``: one address or several."""
    one = address_arg(default_port)

    def addresses(text: str) -> list[tuple[str, int]]:
        parts = [part.strip() for part in text.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"not HOST[:PORT][,HOST[:PORT]...]: {text!r}")
        return [one(part) for part in parts]
    return addresses


def store_arg(text: str) -> str:
    """A shared store's URL: ``redis://HOST[:PORT][/DB]`` (or ``rediss://``, ``unix://``)."""
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise argparse.ArgumentTypeError(f"not redis://HOST:PORT/DB: {text!r}")
    return text


def port_arg(text: str) -> int:
    """A TCP port number, 0 to 65535 (0: any free port)."""
    try:
        return parse_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rfc_arg(text: str) -> int:
    """An RFC number, 1 to ``limits.MAX_RFC_NUMBER`` (a server answers any other with 400)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC number: {text!r}") from None
    if not 1 <= number <= limits.MAX_RFC_NUMBER:
        raise argparse.ArgumentTypeError(
            f"RFC numbers are 1 to {limits.MAX_RFC_NUMBER}: {text!r}")
    return number


def seconds_arg(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a finite number above 0 (leave it out for no limit): {text!r}")
    return value


def folder_arg(text: str) -> Path:
    """A folder path; ``~`` is the home folder (a value from the configuration file is
    not expanded by a shell)."""
    return Path(text).expanduser()


def alias(p: argparse.ArgumentParser, dest: str, *old: str) -> None:
    """Accept the old spellings ``old`` of option ``dest``, hidden from --help."""
    for action in p._actions:
        if action.dest == dest and action.option_strings:
            hidden = p.add_argument(*old, dest=dest, default=argparse.SUPPRESS,
                                    help=argparse.SUPPRESS)
            hidden.type = action.type
            return
    raise ValueError(f"no option with dest {dest!r}")


def out_arg(p: argparse.ArgumentParser, what: str, default: Path | None = Path("."),
            *old: str) -> None:
    """``--out DIR``: where a download (or a result) is written."""
    shown = "" if default is None else " (default %(default)s)"
    p.add_argument("--out", type=folder_arg, default=default, metavar="DIR", help=what + shown)
    if old:
        alias(p, "out", *old)


def listen_arg(p: argparse.ArgumentParser, *old: str) -> None:
    """``--listen HOST``: our bind address (default: all addresses)."""
    p.add_argument("--listen", default=None, metavar="HOST",
                   help="address to listen on (default: all addresses)")
    if old:
        alias(p, "listen", *old)


def advertise_arg(p: argparse.ArgumentParser, what: str, *old: str) -> None:
    """``--advertise HOST``: the host name or address others are told to reach us at."""
    p.add_argument("--advertise", default=None, metavar="HOST",
                   help=f"host name or address others reach us at (default: {what})")
    if old:
        alias(p, "advertise", *old)


def reachable_args(p: argparse.ArgumentParser, server: str, advertised: str,
                   *old_advertise: str) -> None:
    """``--advertise``, ``--listen`` and ``--port`` of a command that runs ``server``
    (``advertised``: what ``--advertise`` defaults to; old spellings of it hidden)."""
    advertise_arg(p, advertised, *old_advertise)
    listen_arg(p, "--bind")
    p.add_argument("--port", type=port_arg, default=0,
                   help=f"{server} port (default 0: any free port)")


def timeout_arg(p: argparse.ArgumentParser) -> None:
    """``--timeout SECONDS``: give up (exit status 6) once this long has passed."""
    p.add_argument("--timeout", type=seconds_arg, default=None, metavar="SECONDS",
                   help="give up after this many seconds (exit status 6; "
                        "default %(default)s)")


_SIZE = re.compile(r"(\d+)\s*([KMG]?)i?B?\Z", re.I)


def size_arg(text: str) -> int:
    """``262144``, ``256K``, ``1M``, ``1GiB`` -> bytes (binary units)."""
    m = _SIZE.match(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    unit: int = 1024 ** " KMG".index(m.group(2).upper() or " ")
    return int(m.group(1)) * unit


def is_torrent_argument(text: str) -> bool:
    """Whether ``fetch``'s argument names a torrent (a magnet link, a ``.torrent`` path,
    or an existing file that reads as a torrent) rather than a swarm. Here, not in the
    BitTorrent package, so that a swarm fetch does not import it at start-up."""
    if text.startswith("magnet:") or text.endswith(".torrent"):
        return True
    path = Path(text)
    try:
        if path.is_file() and path.stat().st_size <= limits.MAX_TORRENT_FILE:
            from ..protocol.metainfo import parse_torrent
            parse_torrent(path.read_bytes())
            return True
    except (OSError, P2PError):
        pass
    return False
