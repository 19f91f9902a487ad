"""The experiment's coordinator: real processes on loopback, measured downloads, results.

Strategy: for each system (P2P-DI, and P2P-CI for comparison) and each case (Task 1
centralized; Task 2 best and worst), start a fresh server process and one process per
peer (``worker``), give each peer its folder of RFC files, let every peer learn the index
("prepare": PQuery and RFCQuery, or LIST), then release all download loops at once and
collect the time of every download the peers measured. Nothing is estimated: each row
of the results is one download that happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import limits
from ..host import join_hostport
from ..peer import paths
from ..samples import sample_text
from .plan import Case, ExperimentError, Plan, make_plan

HOST = "127.0.0.1"
SYSTEMS = ("di", "ci")


@dataclass(frozen=True, slots=True)
class Row:
    """One measured download."""

    system: str
    case: Case
    run: int  # 1 for the first repetition of this case
    peer: int
    seq: int  # 1 for the peer's first download
    rfc: int
    size: int
    holder: int
    lookup_s: float  # CI: the LOOKUP before the GET; DI: 0 (the index was merged before)
    transfer_s: float  # the GET / GetRFC exchange, connect to file renamed
    cumulative_s: float  # this peer's download time so far, this download included

    @property
    def seconds(self) -> float:
        return self.lookup_s + self.transfer_s


@dataclass(frozen=True, slots=True)
class CaseResult:
    system: str
    case: Case
    run: int
    rows: list[Row]
    prepare_s: list[float]  # per downloading peer: PQuery + RFCQuery (DI) or LIST (CI)
    loops: str = ""  # the event loops the processes said they ran on (``loops_of``)

    def peer_totals(self) -> list[float]:
        """Each downloading peer's total download time, in seconds."""
        last: dict[int, float] = {}
        for row in self.rows:
            last[row.peer] = row.cumulative_s
        return list(last.values())


class Worker:
    """A worker process and its JSON-lines conversation."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    @classmethod
    async def start(cls, name: str, *args: str) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "p2pshare.experiment.worker", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(proc, name)

    def send(self, **message: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")

    async def receive(self, key: str) -> Any:
        """The value of the worker's next message, which must carry ``key``."""
        return (await self.message(key))[key]

    async def message(self, key: str) -> dict[str, Any]:
        """The worker's next message, which must carry ``key``."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(limits.EXPERIMENT_STEP_TIMEOUT):
            line = await self.proc.stdout.readline()
        if not line:
            raise ExperimentError(f"{self.name} exited ({await self.proc.wait()}) before {key!r}")
        message = json.loads(line)
        if not isinstance(message, dict) or key not in message:
            raise ExperimentError(f"{self.name} said {message!r}, expected {key!r}")
        return message

    async def stop(self) -> None:
        """Close stdin (the worker leaves and exits); kill it if it does not."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(limits.EXPERIMENT_STEP_TIMEOUT):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def stopping(workers: list[Worker]) -> AsyncIterator[list[Worker]]:
    """Stop every worker in ``workers`` on exit, peers before the server (last first)."""
    try:
        yield workers
    finally:
        for worker in reversed(workers):
            await worker.stop()


async def run_case(system: str, plan: Plan, sources: Path, work: Path, run: int = 1
                   ) -> CaseResult:
    """One system, one case: fresh processes, fresh folders, measured downloads."""
    async with stopping([]) as workers:
        server = await Worker.start("server", "server", "--system", system)
        workers.append(server)
        said = await server.message("ready")
        address = join_hostport(HOST, said["ready"])
        folders = [_fill(work / f"P{i}", sources, rfcs) for i, rfcs in enumerate(plan.holdings)]
        peers = [await Worker.start(f"P{i}", "peer", "--system", system, "--server", address,
                                    "--dir", str(folder)) for i, folder in enumerate(folders)]
        workers.extend(peers)
        ready = await _gather(p.message("ready") for p in peers)
        ports = [message["ready"] for message in ready]
        busy = [i for i, order in enumerate(plan.orders) if order]
        for i in busy:
            holders = sorted({h for _rfc, h in plan.orders[i]})
            peers[i].send(prepare=[[HOST, ports[h]] for h in holders])
        prepared = await _gather(peers[i].receive("prepared") for i in busy)
        for i in busy:  # release every download loop at (nearly) the same instant
            peers[i].send(go=[[rfc, HOST, ports[h]] for rfc, h in plan.orders[i]])
        done = await _gather(peers[i].receive("done") for i in busy)
    rows = [row for i, downloads in zip(busy, done, strict=True)
            for row in _rows(system, plan, run, i, downloads)]
    return CaseResult(system, plan.case, run, rows, [float(s) for s in prepared],
                      loops_of(said, ready))


def loops_of(server: dict[str, Any], peers: list[dict[str, Any]]) -> str:
    """What the workers' ready lines say of their event loops, e.g. "server uvloop, peers
    asyncio" (``worker``: as their commands would run)."""
    def named(messages: list[dict[str, Any]]) -> str:
        return "/".join(sorted({str(m.get("loop", "unknown")) for m in messages})) or "none"
    return f"server {named([server])}, peers {named(peers)}"


def _rows(system: str, plan: Plan, run: int, peer: int, downloads: list[list[float]]
          ) -> Iterable[Row]:
    total = 0.0
    for seq, ((rfc, size, lookup, transfer), (_rfc, holder)) in enumerate(
            zip(downloads, plan.orders[peer], strict=True), 1):
        total += lookup + transfer
        yield Row(system, plan.case, run, peer, seq, int(rfc), int(size), holder, lookup,
                  transfer, total)


async def _gather(steps: Iterable[Any]) -> list[Any]:
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(step) for step in steps]
    return [task.result() for task in tasks]


def _fill(folder: Path, sources: Path, rfcs: Iterable[int]) -> Path:
    """A peer's folder holding ``rfcs`` (hard links to the sources where possible)."""
    folder.mkdir(parents=True)
    for rfc in rfcs:
        name = paths.rfc_filename(rfc)
        try:
            os.link(sources / name, folder / name)
        except OSError:
            shutil.copyfile(sources / name, folder / name)
    return folder


def write_sources(folder: Path, sizes: dict[int, int]) -> None:
    """Generated RFC-like files of the given sizes (see ``samples``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for rfc, size in sizes.items():
        (folder / paths.rfc_filename(rfc)).write_bytes(sample_text(rfc, size))


def real_rfcs(folder: Path, count: int) -> list[int]:
    """The ``count`` most recent (highest-numbered) RFCs in ``folder``.

    Raises:
        ValueError: the folder holds fewer than ``count``.
    """
    found = sorted(paths.scan(folder))
    if len(found) < count:
        raise ValueError(f"{folder} holds {len(found)} RFC files; the experiment needs {count}")
    return found[-count:]


async def run_all(systems: Iterable[str], cases: Iterable[Case], rfcs: list[int], peers: int,
                  sources: Path, work: Path, repeat: int = 1) -> list[CaseResult]:
    """Every (system, case) ``repeat`` times, one after the other (never two at once: they
    would compete for the CPUs).

    The systems alternate within each case and the cases within each repetition, so a
    change in the machine's background load falls on all alike rather than on one system.
    """
    order, plans = tuple(systems), [make_plan(case, rfcs, peers) for case in cases]
    results = []
    for run in range(1, repeat + 1):
        for plan in plans:
            for system in order:
                where = work / f"{system}-{plan.case}-{run}"
                results.append(await run_case(system, plan, sources, where, run))
    return sorted(results, key=lambda r: (order.index(r.system), r.run))
