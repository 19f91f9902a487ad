"""The handout's experiment: plans (pure), and a small real run through the CLI."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from p2pshare.experiment.plan import Case, make_plan, rfc_numbers, sample_sizes
from p2pshare.experiment.run import Worker, stopping

from ..aio import arun
from ..helpers import run_cli


def test_task1_p0_holds_everything_and_the_others_download_50() -> None:
    plan = make_plan(Case.CENTRALIZED, rfc_numbers(6, 10), 6)
    assert len(plan.holdings[0]) == 60 and all(not h for h in plan.holdings[1:])
    assert plan.orders[0] == ()
    for order in plan.orders[1:]:
        assert len(order) == 50 and {h for _r, h in order} == {0}


@pytest.mark.parametrize("case", [Case.BEST, Case.WORST])
def test_task2_every_peer_gets_exactly_what_it_lacks(case: Case) -> None:
    rfcs = rfc_numbers(6, 10)
    plan = make_plan(case, rfcs, 6)
    for me, order in enumerate(plan.orders):
        got = [rfc for rfc, _h in order]
        assert sorted(got) == sorted(set(rfcs) - set(plan.holdings[me]))
        assert all(rfc in plan.holdings[h] for rfc, h in order)


def test_task2_best_case_spreads_the_load_and_worst_case_crowds_it() -> None:
    rfcs = rfc_numbers(6, 10)
    for step in range(50):
        best = Counter(make_plan(Case.BEST, rfcs, 6).orders[p][step][1] for p in range(6))
        assert max(best.values()) == 1  # every holder serves exactly one peer at a time
    worst = Counter(order[0][1] for order in make_plan(Case.WORST, rfcs, 6).orders)
    assert worst == {0: 5, 1: 1}  # P1..P5 all start at P0


def test_sample_sizes_are_realistic_and_reproducible() -> None:
    sizes = sample_sizes(rfc_numbers(6, 10))
    assert sizes == sample_sizes(rfc_numbers(6, 10))
    assert all(3 * 1024 <= s <= 400 * 1024 for s in sizes.values())
    assert 20 * 1024 < sorted(sizes.values())[30] < 100 * 1024  # median of a typical RFC


def test_a_small_experiment_runs_and_writes_measured_results(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("P2PSHARE_LOOP", raising=False)
    done = run_cli(["experiment", "--peers", "3", "--per-peer", "2", "--min-size", "1000",
                    "--max-size", "5000", "--out", str(tmp_path)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Measured downloads" in done.stdout
    server = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"  # as the commands
    assert (f"event loops: ci: server {server}, peers asyncio; di: server {server}, peers "
            "asyncio") in done.stdout
    sizes = sample_sizes(rfc_numbers(3, 2), 1000, 5000)
    for task, downloads in (("task1", 2 * 4), ("task2", 2 * 3 * 4)):
        assert (tmp_path / f"{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with open(tmp_path / f"{task}.csv") as handle:
            rows = list(csv.DictReader(handle))
        for system in ("di", "ci"):
            mine = [r for r in rows if r["system"] == system]
            assert len(mine) == downloads
            assert all(int(r["bytes"]) == sizes[int(r["rfc"])] for r in mine)
            for key in {(r["case"], r["peer"]) for r in mine}:
                curve = [r for r in mine if (r["case"], r["peer"]) == key]
                times = [float(r["seconds"]) for r in curve]
                cumulative = [float(r["cumulative_s"]) for r in curve]
                assert all(t > 0 for t in times)
                assert cumulative[-1] == pytest.approx(sum(times), abs=1e-5)


async def _first_lines(system: str, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first line of a real server worker and of a real peer worker registered with it."""
    async with stopping([]) as workers:
        server = await Worker.start("server", "server", "--system", system)
        workers.append(server)
        assert server.proc.stdout is not None
        said = json.loads(await server.proc.stdout.readline())
        peer = await Worker.start("P0", "peer", "--system", system, "--server",
                                  f"127.0.0.1:{said['ready']}", "--dir", str(folder))
        workers.append(peer)
        assert peer.proc.stdout is not None
        return said, json.loads(await peer.proc.stdout.readline())


@pytest.mark.parametrize(("variable", "server_loop", "peer_loop"), [
    (None, "uvloop", "asyncio"),  # as the commands: servers on uvloop, peers on asyncio's
    ("asyncio", "asyncio", "asyncio"),
    ("uvloop", "uvloop", "uvloop"),
])
@pytest.mark.parametrize("system", ["di", "ci"])
def test_a_worker_runs_on_the_loop_its_command_would(
        system: str, variable: str | None, server_loop: str, peer_loop: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The experiment's servers and peers run on the loops the commands do, and
    ``P2PSHARE_LOOP`` chooses for them as it does for every command (they all ran on
    asyncio's, whatever it said)."""
    pytest.importorskip("uvloop")
    if variable is None:
        monkeypatch.delenv("P2PSHARE_LOOP", raising=False)
    else:
        monkeypatch.setenv("P2PSHARE_LOOP", variable)

    @arun
    async def check() -> None:
        server, peer = await _first_lines(system, tmp_path)
        assert (server["loop"], peer["loop"]) == (server_loop, peer_loop)
        assert isinstance(server["ready"], int) and isinstance(peer["ready"], int)

    check()


@pytest.mark.parametrize("role", [["server"], ["peer", "--server", "127.0.0.1:1"]])
def test_a_worker_told_of_no_loop_says_so_and_stops(
        role: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad ``P2PSHARE_LOOP``: one line on stderr and exit status 2 (a usage error, as
    for a command), before the worker reads or serves anything."""
    monkeypatch.setenv("P2PSHARE_LOOP", "trio")

    @arun
    async def check() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "p2pshare.experiment.worker", *role, "--system", "di",
            "--dir", str(tmp_path), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 5)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert (proc.returncode, out) == (2, b"")
        assert err.decode().splitlines() == [
            "experiment worker: P2PSHARE_LOOP='trio': expected asyncio or uvloop (or unset)"]

    check()
