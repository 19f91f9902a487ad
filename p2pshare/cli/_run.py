"""Running a coroutine as a command: SIGINT/SIGTERM end it cleanly; ``say`` prints its lines.

The event loop: the servers of small messages (the index server, the registration server)
run on uvloop when it is installed (the ``fast`` extra), which answers them faster. Every
other command runs on asyncio's own loop, whose ``sendfile`` is zero-copy (uvloop has none
and would copy every file byte through Python). ``P2PSHARE_LOOP=asyncio`` or ``=uvloop``
overrides the choice for every command; nothing requires uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .text import shown, shown_lines

T = TypeVar("T")


def run(main: Coroutine[Any, Any, int], *, messages_only: bool = False) -> int:
    """Run a command's coroutine; SIGTERM and SIGINT end it (its ``finally`` blocks run).

    ``messages_only``: the command moves no files, so uvloop may run it.
    Returns the coroutine's exit status, or 0 when a signal ended it.
    """
    try:
        with asyncio.Runner(loop_factory=loop_factory(messages_only)) as runner:
            return int(runner.run(_cancel_on_sigterm(main)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0


def loop_factory(messages_only: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, or None for asyncio's (see the module's text)."""
    choice = os.environ.get("P2PSHARE_LOOP", "").lower()
    if choice == "asyncio" or (choice != "uvloop" and not messages_only):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _cancel_on_sigterm(main: Coroutine[Any, Any, T]) -> T:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await main


def fail(message: str, status: int = 1) -> int:
    """Print a one-line reason on stderr (``text.shown``) and return the exit status."""
    print(f"p2pshare: {shown(message)}", file=sys.stderr)
    return status


def note(text: str) -> None:
    """Print a remark about a command's output on stderr (stdout may be JSON)."""
    print(f"p2pshare: {text}", file=sys.stderr, flush=True)


def say(text: str) -> None:
    """Print one line of a command's output at once, even into a pipe (what came from the
    network shown safely: ``text.shown``)."""
    print(shown_lines(text), flush=True)
