"""Running a coroutine as a command: SIGINT/SIGTERM end it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; SIGTERM and SIGINT end it (its ``finally`` blocks run).

    Returns the coroutine's exit status, or 0 when a signal ended it.
    """
    try:
        return int(asyncio.run(_cancel_on_sigterm(main)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0


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
