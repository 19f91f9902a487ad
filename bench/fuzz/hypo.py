"""One fuzz target under hypothesis: the fallback when atheris is not installed.

    python bench/fuzz/hypo.py TARGET FINDINGS_DIR SECONDS SEEDS_DIR

Not coverage-guided: inputs are random bytes and the seeds mutated (bytes replaced,
inserted, deleted, and pieces of seeds spliced together), in batches of examples until
SECONDS are spent. Findings are saved by ``targets.Checker`` as under atheris; the last
lines printed use libFuzzer's ``stat::`` form so that ``run.py`` reads both alike.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BATCH = 500  # examples per hypothesis run; once time is up the rest of a run is skipped


def _mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with up to eight edits: replace, insert, delete, or splice another seed."""
    edit = st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.binary(max_size=16))

    def apply(seed: bytes, other: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
        data = bytearray(seed)
        for kind, at, chunk in edits:
            at = at % (len(data) + 1)
            if kind == 0:
                data[at:at + len(chunk)] = chunk
            elif kind == 1:
                data[at:at] = chunk
            elif kind == 2:
                del data[at:at + len(chunk) + 1]
            else:
                data[at:] = other[at % (len(other) + 1):]
        return bytes(data)

    pick = st.sampled_from(seeds)
    return st.builds(apply, pick, pick, st.lists(edit, max_size=8))


def fuzz(check: targets.Checker, seconds: float, seeds: list[bytes]) -> None:
    inputs = st.binary(max_size=targets.MAX_LEN)
    if seeds:
        inputs = st.one_of(inputs, _mutated(seeds))

    end = time.monotonic() + seconds

    @settings(max_examples=BATCH, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def one(data: bytes) -> None:
        if time.monotonic() < end:
            check(data)

    while time.monotonic() < end:
        one()


def main() -> None:
    name, folder, seconds, seed_dir = sys.argv[1:5]
    check = targets.Checker(targets.TARGETS[name], Path(folder))
    seeds = [p.read_bytes() for p in sorted(Path(seed_dir).glob("*"))] \
        if Path(seed_dir).is_dir() else []
    start = time.monotonic()
    fuzz(check, float(seconds), seeds)
    spent = time.monotonic() - start
    print(f"stat::number_of_executed_units: {check.executions}")
    print(f"stat::average_exec_per_sec:     {int(check.executions / max(spent, 1e-9))}")


if __name__ == "__main__":
    main()
