"""``p2pshare`` command line: parses arguments and calls the library, nothing more.

Each system registers its own sub-commands: ``ci_cmds`` (P2P-CI), ``di_cmds`` (P2P-DI),
``swarm_cmds`` (swarm). Each ``register`` adds parsers whose ``func`` takes the parsed
arguments and returns an exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from . import ci_cmds, di_cmds, swarm_cmds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2pshare",
        description="Peer-to-peer file sharing: P2P-CI/1.0, P2P-DI/1.0 and a piece swarm.",
    )
    parser.add_argument("--version", action="version", version=f"p2pshare {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (ci_cmds, di_cmds, swarm_cmds):
        module.register(sub)
    return parser


def setup_logging(verbose: int, quiet: int) -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
