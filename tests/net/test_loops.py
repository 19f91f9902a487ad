"""The one choice of event loop (``net.loops``), for the commands and the experiment's
workers alike; the command line's handling of a bad value is in tests/cli."""

from __future__ import annotations

import asyncio

import pytest

from p2pshare.errors import ConfigError
from p2pshare.net.loops import loop_choice, loop_factory, loop_name


def test_loop_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop (when installed) for the servers of small messages and the swarm commands;
    the variable wins."""
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv("P2PSHARE_LOOP", raising=False)
    assert loop_factory(fast_loop=True) is uvloop.new_event_loop
    assert loop_factory(fast_loop=False) is None  # P2P-CI and P2P-DI peers
    monkeypatch.setenv("P2PSHARE_LOOP", "asyncio")
    assert loop_factory(fast_loop=True) is None
    monkeypatch.setenv("P2PSHARE_LOOP", "uvloop")
    assert loop_factory(fast_loop=False) is uvloop.new_event_loop


@pytest.mark.parametrize("value", ["trio", "uv loop", "asyncio,uvloop"])
def test_a_loop_of_another_name_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2PSHARE_LOOP", value)
    with pytest.raises(ConfigError, match="expected asyncio or uvloop"):
        loop_choice()
    with pytest.raises(ConfigError):
        loop_factory(fast_loop=False)


def test_a_running_loop_says_its_name() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def name() -> str:
        return loop_name()

    assert asyncio.run(name()) == "asyncio"
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(name()) == "uvloop"
