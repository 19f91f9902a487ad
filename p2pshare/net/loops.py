"""Which event loop runs a process: uvloop's or asyncio's own, and ``P2PSHARE_LOOP``.

The servers of small messages (the index server, the registration server) and the swarm
commands (``share``, ``fetch``, ``seed``: measured to use less CPU per byte on it,
bench/README.md "Swarm CPU profile") run on uvloop when it is installed (the ``fast``
extra); the P2P-CI and P2P-DI peers stay on asyncio's own loop (not measured on uvloop).
Every file body goes out by ``os.sendfile`` on either loop (``link``). The caller says
which kind of process it is (``fast_loop``): a command of the command line, or a worker
process of the experiment, alike. ``P2PSHARE_LOOP=asyncio`` or ``=uvloop`` overrides the
choice for every process; nothing requires uvloop, but asking for it where it is not
installed, or for a loop of another name, is a usage error (``ConfigError``, exit status
2 on the command line), not a silent fallback.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from ..errors import ConfigError


def loop_choice() -> str:
    """``P2PSHARE_LOOP``, checked: "" (unset: ours, see the module's text), "asyncio" or
    "uvloop" (any case). The command line checks it before any command starts, as it does
    the configuration, so that every command refuses a bad one alike.

    Raises:
        ConfigError: it names no loop, or uvloop, which cannot be imported.
    """
    raw = os.environ.get("P2PSHARE_LOOP", "")
    choice = raw.strip().lower()
    if choice not in ("", "asyncio", "uvloop"):
        raise ConfigError(f"P2PSHARE_LOOP={raw!r}: expected asyncio or uvloop (or unset)")
    if choice == "uvloop":
        try:
            import uvloop  # noqa: F401 (asked for: it must be there)
        except ImportError:
            raise ConfigError("P2PSHARE_LOOP=uvloop, but uvloop is not installed "
                              "(pip install 'p2pshare[fast]')") from None
    return choice


def loop_factory(fast_loop: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, or None for asyncio's (see the module's text): ``fast_loop`` for a
    server of small messages or a swarm process, False for a P2P-CI or P2P-DI peer.

    Raises:
        ConfigError: as ``loop_choice``.
    """
    choice = loop_choice()
    if choice == "asyncio" or (choice != "uvloop" and not fast_loop):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """The running loop's kind, "uvloop" or "asyncio", as a process reports it."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") \
        else "asyncio"
