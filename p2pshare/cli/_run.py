"""Running a coroutine as a command: SIGINT/SIGTERM end it cleanly, on uvloop if installed.

uvloop (the ``fast`` extra) is used when it can be imported, unless ``P2PSHARE_LOOP=asyncio``
asks for the standard loop; nothing requires it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; SIGTERM and SIGINT end it (its ``finally`` blocks run).

    Returns the coroutine's exit status, or 0 when a signal ended it.
    """
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return int(runner.run(_cancel_on_sigterm(main)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed and not refused by ``P2PSHARE_LOOP=asyncio``."""
    if os.environ.get("P2PSHARE_LOOP", "").lower() == "asyncio":
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
    """Print a one-line reason on stderr and return the exit status."""
    print(f"p2pshare: {message}", file=sys.stderr)
    return status
