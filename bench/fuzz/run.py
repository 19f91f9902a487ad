"""Fuzz every p2pshare codec for a set time and print what each target did.

    python bench/fuzz/run.py [--seconds S] [--jobs J] [--targets ci,di_server,...]

Each target (``targets.TARGETS``; a codec name stands for all its targets) runs in its own
process under ``nice``: atheris (coverage-guided libFuzzer) if it is installed, else
hypothesis (``--engine`` forces one). Up to ``--jobs`` targets run at once, each for
``--seconds``. A target's process that dies (an input hung past ``--timeout`` or went
over ``--rss-limit-mb``) is restarted on the same corpus until its time is spent.

Everything goes under ``--out`` (default bench/fuzz/out, not committed):
``corpus/TARGET`` (inputs that reached new coverage), ``findings/TARGET`` (one ``.bin``
input and ``.txt`` traceback per distinct finding, libFuzzer's ``timeout-*``/``oom-*``),
``logs/TARGET.log`` and ``summary.json``. A finding is replayed with
``--replay TARGET FILE``. The seeds (bench/fuzz/seeds) are rewritten by ``seeds.py``.

The invariant for every target: the input parses, or the codec raises its protocol error
(``RemoteProtocolError``; ``IntegrityError`` for a manifest checked against its id);
nothing else, within ``targets.SLOW`` CPU seconds per input.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import targets

HERE = Path(__file__).resolve().parent
_COVERAGE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", re.M)
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
_ARTIFACTS = ("timeout-", "oom-", "crash-", "leak-", "slow-unit-")


@dataclass(slots=True)
class Result:
    target: str
    codec: str
    engine: str
    seconds: float = 0.0
    executions: int = 0
    coverage: int = 0  # libFuzzer "cov": instrumented edges reached
    features: int = 0  # libFuzzer "ft": coverage features (edges, counters, comparisons)
    corpus: int = 0
    runs: int = 0  # processes started: 1 unless an input hung or ran out of memory
    findings: int = 0

    @property
    def per_second(self) -> int:
        return int(self.executions / self.seconds) if self.seconds else 0


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Details: the docstring of bench/fuzz/run.py.")
    parser.add_argument("--seconds", type=float, default=60, help="time per target")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once")
    parser.add_argument("--targets", default="all",
                        help="comma-separated target or codec names (ci, di, swarm, bt)")
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--nice", type=int, default=10, help="niceness of every fuzz process")
    parser.add_argument("--timeout", type=int, default=20, help="seconds before an input hangs")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--replay", nargs=2, metavar=("TARGET", "FILE"),
                        help="run one saved input through one target and show what it raises")
    return parser.parse_args(argv)


def _selected(spec: str) -> list[targets.Target]:
    chosen: list[targets.Target] = []
    for word in spec.split(","):
        matches = [t for t in targets.TARGETS.values() if word in ("all", t.codec, t.name)]
        if not matches:
            raise SystemExit(f"no target or codec {word!r}; targets: {', '.join(targets.TARGETS)}")
        chosen += [t for t in matches if t not in chosen]
    return chosen


def _command(engine: str, target: targets.Target, args: argparse.Namespace,
             left: float) -> list[str]:
    findings, corpus = args.out / "findings" / target.name, args.out / "corpus" / target.name
    seeds = HERE / "seeds" / target.name
    nice = ["nice", "-n", str(args.nice), sys.executable]
    if engine == "hypothesis":
        return [*nice, str(HERE / "hypo.py"), target.name, str(findings), str(left), str(seeds)]
    return [*nice, str(HERE / "worker.py"), target.name, str(findings),
            f"-max_total_time={max(1, int(left))}", f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_limit_mb}", f"-max_len={targets.MAX_LEN}",
            f"-dict={HERE / 'tokens.dict'}", "-print_final_stats=1",
            f"-artifact_prefix={findings}/", str(corpus), str(seeds)]


def fuzz(target: targets.Target, engine: str, args: argparse.Namespace) -> Result:
    """Run one target for ``args.seconds``, restarting its process if an input kills it."""
    result = Result(target.name, target.codec, engine)
    for sub in ("findings", "corpus", "logs"):
        (args.out / sub / target.name if sub != "logs" else args.out / sub).mkdir(
            parents=True, exist_ok=True)
    log = args.out / "logs" / f"{target.name}.log"
    log.write_text("")
    start = time.monotonic()
    while (left := args.seconds - (time.monotonic() - start)) > 1:
        offset = log.stat().st_size
        with log.open("a") as sink:
            subprocess.run(_command(engine, target, args, left), stdout=sink,
                           stderr=subprocess.STDOUT, cwd=HERE, check=False)
        result.runs += 1
        with log.open("rb") as done:
            done.seek(offset)
            _add_stats(result, done.read().decode(errors="replace"))
    result.seconds = round(time.monotonic() - start, 1)
    folder = args.out / "findings" / target.name
    result.findings = sum(1 for p in folder.iterdir()
                          if p.suffix == ".bin" or p.name.startswith(_ARTIFACTS))
    return result


def _add_stats(result: Result, output: str) -> None:
    stats = dict(_STAT.findall(output))
    marks = _COVERAGE.findall(output)
    runs = stats.get("number_of_executed_units") or (marks[-1][0] if marks else "0")
    result.executions += int(runs)
    if marks:
        _, cov, ft, corp = (int(x) for x in marks[-1])
        result.coverage, result.features = max(result.coverage, cov), max(result.features, ft)
        result.corpus = max(result.corpus, corp)


def table(results: list[Result]) -> str:
    """A Markdown table of the results, one row per target and one per codec."""
    rows = ["| target | engine | seconds | executions | exec/s | cov | ft | corpus | runs "
            "| findings |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r.target} | {r.engine} | {r.seconds:.0f} | {r.executions:,} | "
                    f"{r.per_second:,} | {r.coverage} | {r.features} | {r.corpus} | {r.runs} "
                    f"| {r.findings} |")
    for codec in dict.fromkeys(r.codec for r in results):
        mine = [r for r in results if r.codec == codec]
        rows.append(f"| **{codec} (all)** | | {sum(r.seconds for r in mine):.0f} | "
                    f"{sum(r.executions for r in mine):,} | | | | | | "
                    f"{sum(r.findings for r in mine)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.replay:
        targets.replay(args.replay[0], Path(args.replay[1]).read_bytes())
        return 0
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") else "hypothesis"
    chosen = _selected(args.targets)
    print(f"fuzzing {len(chosen)} targets with {engine}, {args.seconds:.0f} s each, "
          f"{args.jobs} at once; output in {args.out}", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda t: fuzz(t, engine, args), chosen))
    (args.out / "summary.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    print(table(results))
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
