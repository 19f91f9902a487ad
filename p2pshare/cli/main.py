"""``p2pshare`` command line: parses arguments and calls the library, nothing more.

Each system registers its own sub-commands: ``ci_cmds`` (P2P-CI), ``di_cmds`` (P2P-DI),
``swarm_cmds`` (swarm). Each ``register`` adds parsers whose ``func`` takes the parsed
arguments and returns an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from .text import shown_lines

MODULES = ("ci_cmds", "di_cmds", "swarm_cmds")
# The module that registers each sub-command: a command imports only its own system's
# code, so each of many processes (a swarm, the experiment) starts sooner. A test checks
# this table against what the modules register.
OWNERS = {
    **dict.fromkeys(("server", "peer", "list", "lookup", "get", "demo"), "ci_cmds"),
    **dict.fromkeys(("rs", "di-peer", "di-get", "di-peers", "experiment"), "di_cmds"),
    **dict.fromkeys(("share", "fetch", "files"), "swarm_cmds"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with a known ``command``, only its module's sub-commands (``OWNERS``)."""
    parser = argparse.ArgumentParser(
        prog="p2pshare",
        description="Peer-to-peer file sharing: P2P-CI/1.0, P2P-DI/1.0 and a piece swarm.",
    )
    parser.add_argument("--version", action="version", version=f"p2pshare {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = (OWNERS[command],) if command in OWNERS else MODULES
    for name in names:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (global options come first and take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def setup_logging(verbose: int, quiet: int) -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Shown("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=max(level, logging.DEBUG), handlers=[handler])


class _Shown(logging.Formatter):
    """Log lines carry names and reasons from the network: shown safely (``text.shown``)."""

    def format(self, record: logging.LogRecord) -> str:
        return shown_lines(super().format(record))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command(argv)).parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
