"""``p2pshare`` command line: parses arguments and calls the library, nothing more.

Each system registers its own sub-commands: ``server_cmds`` (the index server and tracker),
``ci_cmds`` (P2P-CI), ``di_cmds`` (P2P-DI), ``swarm_cmds`` (swarm). Each ``register`` adds
parsers whose ``func`` takes the parsed arguments and returns an exit status
(docs/cli.md#exit-codes). This module adds what every sub-command shares: ``-v``/``-q``
after the sub-command's name too, an ``example:`` in each ``--help`` (``EXAMPLES``),
defaults from the configuration (``config``), and two commands of its own: ``config`` (the
settings in effect) and ``completion`` (a shell script).

``main`` never shows a traceback unless asked (``-vv``): a configuration error is one line
and status 2, a reader closing our stdout ends the command quietly, anything unexpected is
one line and "run with -vv for details".
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import re
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import ConfigError
from ..net.loops import loop_choice
from ..wirelog import WIRE
from ._run import StdoutClosed, fail, say, say_json
from .config import apply_settings, config_path, subparsers
from .exits import Exit, from_error
from .options import HelpFormatter
from .text import shown_lines

MODULES = ("server_cmds", "ci_cmds", "di_cmds", "swarm_cmds", "torrent_cmds", "bt_cmds")
# The module that registers each sub-command: a command imports only its own system's
# code, so each of many processes (a swarm, the experiment) starts sooner. A test checks
# this table against what the modules register.
OWNERS = {
    "server": "server_cmds",
    **dict.fromkeys(("peer", "list", "lookup", "get", "demo"), "ci_cmds"),
    **dict.fromkeys(("rs", "di-peer", "di-get", "di-peers", "experiment"), "di_cmds"),
    **dict.fromkeys(("share", "fetch", "files"), "swarm_cmds"),
    "seed": "bt_cmds",
    "torrent": "torrent_cmds",
}

# One example per sub-command, shown at the end of its --help (docs/cli.md repeats them).
EXAMPLES = {
    "server": "p2pshare server --port 7734",
    "peer": "p2pshare peer --server 10.0.0.5 --dir ~/rfcs",
    "list": "p2pshare list --server 10.0.0.5 --json",
    "lookup": "p2pshare lookup 2345 --server 10.0.0.5",
    "get": "p2pshare get 2345 --server 10.0.0.5 --out ~/Downloads --timeout 60",
    "demo": "p2pshare demo --out /tmp/demo",
    "rs": "p2pshare rs --port 65423 --ttl 7200",
    "di-peer": "p2pshare di-peer --rs 10.0.0.5 --dir ~/rfcs --no-menu",
    "di-get": "p2pshare di-get 2345 --rs 10.0.0.5 --out ~/Downloads",
    "di-peers": "p2pshare di-peers --rs 10.0.0.5 --all --json",
    "experiment": "p2pshare experiment --peers 6 --out out/experiment --no-plot",
    "share": "p2pshare share big.iso --server 10.0.0.5 --max-upload-rate 10M",
    "fetch": "p2pshare fetch big.iso --server 10.0.0.5 --out ~/Downloads --json",
    "files": "p2pshare files --server 10.0.0.5 --name big.iso",
    "seed": "p2pshare seed big.iso.torrent --dir ~/Downloads --port 6881",
    "torrent": "p2pshare torrent create ~/photos --tracker http://10.0.0.5:8080/announce",
    "config": "p2pshare config --json",
    "completion": "p2pshare completion bash > ~/.local/share/bash-completion/completions/p2pshare",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with a known ``command``, only its module's sub-commands (``OWNERS``)."""
    parser = argparse.ArgumentParser(
        prog="p2pshare",
        description="Peer-to-peer file sharing: P2P-CI/1.0, P2P-DI/1.0 and a piece swarm.",
        epilog="Exit codes, JSON shapes and the configuration file: docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"p2pshare {__version__}")
    _verbosity_args(parser, "")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = (OWNERS[command],) if command in OWNERS else MODULES
    for name in names:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    _register_own(sub)
    for name, p in subparsers(parser).items():
        _verbosity_args(p, "_here")
        p.formatter_class = HelpFormatter
        p.epilog = f"example:\n  {EXAMPLES[name]}" if name in EXAMPLES else p.epilog
        for inner in subparsers(p).values():  # torrent create: -q after "create" too
            _verbosity_args(inner, "_inner")
            inner.formatter_class = HelpFormatter
    return parser


def _verbosity_args(p: argparse.ArgumentParser, suffix: str) -> None:
    """-v/-q: on the main parser, and again (own ``dest``) after each sub-command's name."""
    p.add_argument("-v", "--verbose", action="count", default=0, dest=f"verbose{suffix}",
                   help="more log output: -v each message on the wire, -vv internal decisions")
    p.add_argument("-q", "--quiet", action="count", default=0, dest=f"quiet{suffix}",
                   help="warnings and errors only, no progress")


def _register_own(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("config", help="print each setting in effect and where it comes from")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(func=cmd_completion)


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (global options come first and take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def log_level(verbose: int, quiet: int) -> int:
    """INFO by default; -v WIRE, -vv DEBUG; -q WARNING, -qq ERROR."""
    if quiet:
        return logging.WARNING if quiet == 1 else logging.ERROR
    return (logging.INFO, WIRE, logging.DEBUG)[min(verbose, 2)]


def setup_logging(verbose: int, quiet: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Shown("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=log_level(verbose, quiet), handlers=[handler])


class _Shown(logging.Formatter):
    """Log lines carry names and reasons from the network: shown safely (``text.shown``)."""

    def format(self, record: logging.LogRecord) -> str:
        return shown_lines(super().format(record))


def main(argv: Sequence[str] | None = None, *, collector_paused: bool = False) -> int:
    """Run the command line ``argv`` (default: the process's); returns the exit status.
    ``collector_paused``: the caller (``__main__.entry``) turned the garbage collector off
    for start-up; it is turned on again before the command runs (``_collector_on``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(_command(argv))
        apply_settings(parser)
        args = parser.parse_args(argv)
        for suffix in ("_here", "_inner"):
            args.verbose += args.__dict__.pop(f"verbose{suffix}", 0)
            args.quiet += args.__dict__.pop(f"quiet{suffix}", 0)
        setup_logging(args.verbose, args.quiet)
        loop_choice()  # a bad P2PSHARE_LOOP stops every command alike, before it starts
        if collector_paused:
            _collector_on()
        return int(args.func(args))
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except ConfigError as exc:
        return fail(str(exc), from_error(exc))
    except BaseException as exc:  # noqa: BLE001 (sorted out in _unexpected)
        return _unexpected(exc, _verbosity(argv))


def _collector_on() -> None:
    """The command line starts with the garbage collector off (``__main__.entry``). What
    start-up made lives as long as the process: it is frozen out of the collector's passes
    (as ``_run.run`` does) before the collector resumes, else the first young collection
    would walk all of it. (With it the few hundred objects of start-up's garbage stay,
    ~50 KB for a server, once per process.)"""
    gc.freeze()
    gc.enable()


def _unexpected(exc: BaseException, verbose: int) -> int:
    """The status for an exception no command handled: quiet for a closed stdout, 130 for
    an interruption, else one line (a traceback with -vv)."""
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, BaseExceptionGroup):
        if exc.subgroup((StdoutClosed, BrokenPipeError)) is not None:
            exc = StdoutClosed()
        elif exc.subgroup(KeyboardInterrupt) is not None:
            return Exit.INTERRUPTED
    if isinstance(exc, StdoutClosed | BrokenPipeError):
        _stdout_gone()
        return Exit.OK
    if not isinstance(exc, Exception):
        raise exc
    if verbose >= 2:
        traceback.print_exception(exc, file=sys.stderr)
    return fail(f"{type(exc).__name__}: {exc} (run with -vv for details)", from_error(exc))


def _stdout_gone() -> None:
    """Point stdout at /dev/null so that flushing it at exit raises nothing more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _verbosity(argv: Sequence[str]) -> int:
    return sum(1 if a == "--verbose" else len(a) - 1 for a in argv
               if a == "--verbose" or re.fullmatch(r"-v+", a))


# --------------------------------------------------------------------------- config
def cmd_config(args: argparse.Namespace) -> int:
    settings = apply_settings(build_parser())
    if args.json:
        say_json({"file": str(config_path()), "settings": [
            {"key": e.setting.key, "value": e.value, "source": e.source,
             "env": e.setting.env, "commands": list(e.commands)} for e in settings]})
        return Exit.OK
    say(f"# file: {config_path()}")
    width = max(len(e.setting.key) for e in settings)
    for e in settings:
        value = "(none)" if e.value is None else e.value
        used = ", ".join(e.commands) or "no command yet"
        say(f"{e.setting.key:<{width}} = {value}    # {e.source}; {e.setting.env}; {used}")
    return Exit.OK


# --------------------------------------------------------------------------- completion
def cmd_completion(args: argparse.Namespace) -> int:
    script = completion_script(build_parser())
    if args.shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    say(script)
    return Exit.OK


def completion_script(parser: argparse.ArgumentParser) -> str:
    """A bash completion function for ``parser``: sub-commands, then each one's options
    for a word that starts with ``-``; any other word is a value: a choice of the command's
    (``completion bash``) or, through ``-o default``, a file name (``--out <TAB>``)."""
    commands = subparsers(parser)
    cases = [f"        {name}) opts=\"{_words(_options(p))}\"; words=\"{_words(_choices(p))}\" ;;"
             for name, p in commands.items()]
    top = " ".join([*commands, *_options(parser, nested=False)])
    return "\n".join([
        "# p2pshare completion (bash); generated by `p2pshare completion bash`",
        "_p2pshare() {",
        "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" cmd=\"\" opts words=\"\" word",
        "    for word in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do",
        "        case \"$word\" in -*) ;; *) cmd=\"$word\"; break ;; esac",
        "    done",
        "    case \"$cmd\" in",
        *cases,
        f"        *) opts=\"{top}\" ;;",
        "    esac",
        "    if [[ -n \"$cmd\" && \"$cur\" != -* ]]; then",
        "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))  # none: file names",
        "    else",
        "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))",
        "    fi",
        "}",
        "complete -o default -F _p2pshare p2pshare",
    ])


def _words(words: list[str]) -> str:
    return " ".join(words)


def _choices(p: argparse.ArgumentParser) -> list[str]:
    """The values ``p``'s positional arguments are chosen from (``completion``'s shells)."""
    return [str(c) for a in p._actions if not a.option_strings and a.choices
            for c in a.choices]


def _options(p: argparse.ArgumentParser, *, nested: bool = True) -> list[str]:
    """The option strings ``p`` shows in its help (hidden aliases left out), then (if
    ``nested``) those of its own sub-commands (``torrent create``)."""
    own = [s for a in p._actions if a.help is not argparse.SUPPRESS for s in a.option_strings]
    inner = [s for sub in subparsers(p).values() for s in _options(sub)] if nested else []
    return own + [s for s in dict.fromkeys(inner) if s not in own]
