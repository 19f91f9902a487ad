"""The experiment's outputs: a CSV and a PNG per task, and a summary table.

Strategy: the handout asks for "the cumulative download time against the number of RFCs
for each peer". Each task's PNG has one panel per case (Task 2: best and worst side by
side, same scale) and one curve per peer and system: P2P-DI solid, P2P-CI dashed, one
colour per peer. matplotlib is imported only here and only when plotting (an optional
dependency; the CSVs never need it).
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterable
from pathlib import Path

from rich.table import Table

from .plan import Case
from .run import CaseResult, Row

CSV_FIELDS = ("system", "case", "run", "peer", "seq", "rfc", "bytes", "holder", "lookup_s",
              "transfer_s", "seconds", "cumulative_s")
TASKS = {"task1": (Case.CENTRALIZED,), "task2": (Case.BEST, Case.WORST)}
SYSTEM_NAMES = {"di": "P2P-DI", "ci": "P2P-CI"}
STYLES = {"di": "-", "ci": "--"}


def write_csv(path: Path, rows: Iterable[Row]) -> None:
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(CSV_FIELDS)
        for r in rows:
            out.writerow([r.system, r.case.value, r.run, f"P{r.peer}", r.seq, r.rfc, r.size,
                          f"P{r.holder}", f"{r.lookup_s:.6f}", f"{r.transfer_s:.6f}",
                          f"{r.seconds:.6f}", f"{r.cumulative_s:.6f}"])


def write_task_files(out: Path, results: list[CaseResult], title: str, plots: bool = True
                     ) -> list[Path]:
    """``task1.csv``/``.png`` and ``task2.csv``/``.png`` for the cases that ran."""
    written = []
    for task, cases in TASKS.items():
        mine = [r for r in results if r.case in cases]
        if not mine:
            continue
        write_csv(out / f"{task}.csv", (row for r in mine for row in r.rows))
        written.append(out / f"{task}.csv")
        if plots:
            written.append(plot(out / f"{task}.png", task, cases, mine, title))
    return written


def plot(path: Path, task: str, cases: tuple[Case, ...], results: list[CaseResult],
         title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cases), figsize=(6.5 * len(cases), 4.8), sharey=True,
                             squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, case in zip(axes[0], cases, strict=True):
        for result in median_runs([r for r in results if r.case is case]):
            for peer, rows in sorted(_by_peer(result.rows).items()):
                ax.plot([r.seq for r in rows], [r.cumulative_s * 1000 for r in rows],
                        STYLES.get(result.system, "-"), color=colours(peer % 10),
                        label=f"{SYSTEM_NAMES.get(result.system, result.system)} P{peer}")
        ax.set_title(f"{task.replace('task', 'Task ')}: {case.value}")
        ax.set_xlabel("RFCs downloaded")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", ncol=2)
    axes[0][0].set_ylabel("cumulative download time (ms)")
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _by_peer(rows: list[Row]) -> dict[int, list[Row]]:
    peers: dict[int, list[Row]] = {}
    for row in rows:
        peers.setdefault(row.peer, []).append(row)
    return peers


def median_runs(results: list[CaseResult]) -> list[CaseResult]:
    """Per system, the run whose mean peer total is the median one (the run plotted)."""
    chosen = []
    for system in dict.fromkeys(r.system for r in results):
        runs = sorted((r for r in results if r.system == system),
                      key=lambda r: statistics.mean(r.peer_totals()))
        chosen.append(runs[(len(runs) - 1) // 2])
    return chosen


def summary(results: list[CaseResult]) -> Table:
    """One row per system and case, over all its runs; times in milliseconds."""
    table = Table(title="Measured downloads, ms")
    for column in ("system", "case", "runs", "peers", "RFCs", "MiB", "per RFC: median/p90/max",
                   "per peer: min/mean/max", "index setup"):
        table.add_column(column, justify="left" if column in ("system", "case") else "right")
    groups: dict[tuple[str, Case], list[CaseResult]] = {}
    for result in results:
        groups.setdefault((result.system, result.case), []).append(result)
    for (system, case), runs in groups.items():
        rows = [row for r in runs for row in r.rows]
        each = sorted(row.seconds * 1000 for row in rows)
        totals = [t * 1000 for r in runs for t in r.peer_totals()]
        setup = [s * 1000 for r in runs for s in r.prepare_s]
        table.add_row(
            SYSTEM_NAMES.get(system, system), case.value, str(len(runs)),
            str(len(runs[0].peer_totals())), str(len(rows) // len(runs)),
            f"{sum(row.size for row in runs[0].rows) / 2**20:.1f}",
            f"{statistics.median(each):.2f}/{_p90(each):.2f}/{each[-1]:.2f}",
            f"{min(totals):.0f}/{statistics.mean(totals):.0f}/{max(totals):.0f}",
            f"{statistics.mean(setup):.1f}")
    return table


def _p90(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
