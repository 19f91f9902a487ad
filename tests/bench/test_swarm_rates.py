"""bench/swarm's rate check: its arithmetic and option parsing on known inputs, and the
command lines its p2pshare peers get (the CLI's current option names). The measured run
itself needs root and namespaces: it is run by hand (bench/README.md), not here."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest

MiB = 1024 * 1024


def test_steady_rate_is_taken_between_10_and_90_percent(swarm: ModuleType) -> None:
    # A slow start and a slow end; in between the two seeds send 40 bytes a second together.
    timeline = [(0.0, {"a": 0, "b": 0}), (1.0, {"a": 2, "b": 0}), (2.0, {"a": 6, "b": 6}),
                (3.0, {"a": 26, "b": 26}), (4.0, {"a": 46, "b": 46}),
                (9.0, {"a": 50, "b": 50, "l1": 999})]
    assert swarm.steady_rate(timeline, ["a", "b"]) == pytest.approx(40.0)
    assert swarm.steady_rate(timeline, ["a"]) == pytest.approx(20.0)


def test_size_text_in_binary_units(swarm: ModuleType) -> None:
    assert swarm.size_text("4M") == 4 * MiB
    assert swarm.size_text(" 512k ") == 512 * 1024
    assert swarm.size_text("1G") == 1024 * MiB
    assert swarm.size_text("100") == 100
    for bad in ("1.5M", "4MB", "-1", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            swarm.size_text(bad)


def test_rate_check_defaults_and_no_loopback(swarm: ModuleType) -> None:
    args = swarm.parse_args(["--rate-check", "--rate-limit", "2M"])
    assert (args.size_mib, args.rate_limit) == (32, 2 * MiB)
    assert swarm.parse_args(["--rate-check", "--size-mib", "8"]).size_mib == 8
    assert swarm.parse_args(["--loopback"]).size_mib == 256
    with pytest.raises(SystemExit):
        swarm.parse_args(["--rate-check", "--loopback"])


class _Spawned:
    """Stands in for Procs: records each command instead of starting it."""

    def __init__(self) -> None:
        self.commands: dict[str, list[str]] = {}

    def spawn(self, enter: list[str], name: str, args: list[str]) -> None:
        self.commands[name] = [*enter, *args]


def test_rate_limited_peers_use_the_current_option_names(swarm: ModuleType,
                                                         tmp_path: Path) -> None:
    base = swarm.P2PShare(None, False, None)
    limited = swarm.RateLimited(base, ["seed", "s2"], ["--max-upload-rate", "2097152"],
                                ["--max-download-rate", "2097152"])
    topo = swarm.Loopback(["tr", "seed", "s2", "l1"])
    procs = _Spawned()
    r = swarm.Run(topo, procs, tmp_path / "f.bin", tmp_path, ["l1"], {"id": "ab" * 32})
    limited.leech(r, "l1")
    fetch = procs.commands["l1"]
    at = fetch.index("fetch")
    assert fetch[at:at + 2] == ["fetch", "ab" * 32]
    assert fetch[fetch.index("--listen") + 1] == fetch[fetch.index("--advertise") + 1] \
        == topo.addr["l1"]
    assert fetch[-2:] == ["--max-download-rate", "2097152"] and "--seed" not in fetch
    assert "--host" not in fetch
    assert limited.services(r) == ["tracker", "seed", "s2"]  # leeches leave when done
    assert base.services(r) == ["tracker", "seed", "l1"]  # they seed in the benchmark
