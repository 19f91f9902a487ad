"""Running a coroutine as a command: SIGINT/SIGTERM end it cleanly; ``say`` prints its lines.

Signals: SIGINT and SIGTERM cancel the command's task (its ``finally`` blocks run). What
the command then exits with depends on what it was doing (docs/cli.md#exit-codes): a
finite job (a download, a query) that a signal cut short exits 130 (``Exit.INTERRUPTED``);
a command whose normal life is to serve until stopped (a server, a peer, ``share``,
``fetch --seed`` once its file is complete) exits 0. A command says it has reached that
serving state with ``serving()``, so one command can be both (``fetch --seed``).

Output: results go to stdout through ``say`` / ``say_json``; notes, progress and errors to
stderr (``note``, ``fail``). A reader that closes stdout early (``| head``) ends the
command quietly: ``say`` turns the broken pipe into ``StdoutClosed``, which no command's
``except OSError`` catches, and ``main`` ends on it with status 0.

The event loop: uvloop for the servers of small messages and the swarm commands, asyncio's
own for the P2P-CI and P2P-DI peers, ``P2PSHARE_LOOP`` overriding (``net.loops``); the
command line checks the variable (``net.loops.loop_choice``) before any command starts,
and a bad one is a usage error (``ConfigError``, exit status 2).

Garbage collection: what start-up made (modules, classes, functions: tens of thousands of
objects, all for the process's life) is frozen out of the cyclic collector's passes
(``gc.freeze``; the command line's entry, ``__main__.entry``, keeps the collector off
until then: ~30 collections during the imports found next to nothing and cost ~3 ms a
process), and its
first generation is collected every ``GC_YOUNG`` new objects rather than 700: the garbage
of moving data (buffers, tuples, futures) is freed by reference counting, and a pass every
700 allocations walked the swarm's tables for nothing (bench/README.md "Sixth round": 3-4%
of a download's CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from ..net.loops import loop_factory
from .exits import Exit
from .text import shown, shown_lines

T = TypeVar("T")

GC_YOUNG = 20_000  # new container objects between two passes of the cyclic collector


class StdoutClosed(Exception):  # noqa: N818 (a state, not an error of ours)
    """The reader of our stdout went away (a broken pipe); the command ends quietly."""


class _Life:
    """What the running command is doing: a finite job, or serving until stopped."""

    serving = False
    signalled = False


def serving() -> None:
    """The command now serves until stopped: a signal ends it with status 0, not 130."""
    _Life.serving = True


def interrupted_status() -> Exit:
    """The status a signal ends the running command with now (0 serving, else 130)."""
    return Exit.OK if _Life.serving else Exit.INTERRUPTED


def run(main: Coroutine[Any, Any, int], *, fast_loop: bool = False,
        serves: bool = False) -> int:
    """Run a command's coroutine; SIGTERM and SIGINT cancel it (its ``finally`` blocks run).

    ``fast_loop``: uvloop may run the command (see the module's text).
    ``serves``: the command serves until stopped from the start (``serving()``).
    Returns the coroutine's exit status, or ``interrupted_status()`` when a signal ended it.
    """
    _Life.serving, _Life.signalled = serves, False
    factory = loop_factory(fast_loop)  # the command line checked the choice (loop_choice)
    gc.freeze()
    gc.set_threshold(GC_YOUNG)
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            status = int(runner.run(_cancel_on_signals(main)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return interrupted_status()
    return interrupted_status() if _Life.signalled else status


async def _cancel_on_signals(main: Coroutine[Any, Any, T]) -> T:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def stop() -> None:
        _Life.signalled = True
        if task is not None:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop)
    return await main


class Stopped(Exception):  # noqa: N818 (a state, not an error of ours)
    """Raised inside a ``stoppable`` thread once its caller was cancelled."""


async def stoppable(work: Callable[[Callable[[int], None]], T],
                    advance: Callable[[int], None]) -> T:
    """``work(progress)`` in a thread (``progress``: ``advance``, called per step). Once the
    caller is cancelled (a signal, ``--timeout``), the thread's next ``progress`` call
    raises ``Stopped``: the thread ends within one step instead of running to the end
    (the event loop waits for its threads before the process may exit)."""
    stop = threading.Event()

    def progress(count: int) -> None:
        if stop.is_set():
            raise Stopped
        advance(count)

    try:
        return await asyncio.to_thread(work, progress)
    except asyncio.CancelledError:
        stop.set()
        raise


class GaveUp(TimeoutError):
    """``--timeout`` passed (a TimeoutError: ``from_error`` maps it to ``Exit.TIMEOUT``)."""


@contextlib.asynccontextmanager
async def deadline(seconds: float | None) -> AsyncIterator[None]:
    """Cancel the block after ``seconds`` (None: never) and raise ``GaveUp``."""
    try:
        async with asyncio.timeout(seconds) as limit:
            yield
    except TimeoutError:
        if not limit.expired():
            raise
        raise GaveUp(f"gave up after {seconds:g} s (--timeout)") from None


async def within(seconds: float | None, main: Coroutine[Any, Any, int]) -> int:
    """``main``'s status, or one line and ``Exit.TIMEOUT`` once ``seconds`` have passed."""
    try:
        async with deadline(seconds):
            return await main
    except GaveUp as exc:
        return fail(str(exc), Exit.TIMEOUT)


def fail(message: str, status: int = Exit.FAILURE) -> int:
    """Print a one-line reason on stderr (``text.shown``) and return the exit status."""
    print(f"p2pshare: {shown(message)}", file=sys.stderr, flush=True)
    return status


def lacking(exc: ImportError, module: str, message: str, status: int = Exit.LOCAL) -> int:
    """The exit for an optional dependency that is not installed: ``message`` (and
    ``status``) when ``exc`` says that ``module`` is missing; any other import failure
    (a broken install, a bug of ours) is raised again, to be reported as what it is.

    Raises:
        ImportError: ``exc``, when it is not about ``module`` being absent.
    """
    if not isinstance(exc, ModuleNotFoundError) or (exc.name or "").split(".")[0] != module:
        raise exc
    return fail(message, status)


def note(text: str) -> None:
    """Print a remark about a command's output on stderr (stdout may be JSON)."""
    print(f"p2pshare: {text}", file=sys.stderr, flush=True)


def say(text: str) -> None:
    """Print one line of a command's output at once, even into a pipe (what came from the
    network shown safely: ``text.shown``)."""
    _out(shown_lines(text))


def say_json(value: Any, *, lines: bool = False) -> None:
    """Print ``value`` as JSON on stdout: indented, or one line (``lines``: NDJSON)."""
    _out(json.dumps(value) if lines else json.dumps(value, indent=2))


def _out(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise StdoutClosed from None
