"""bench/rs_rps's self-check at a tiny size: the C client, the one-shot bare server and a
real RS run together and every exchange is answered. No figure is judged (the suite holds
no timed assertion)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "rs_rps.py"


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="needs a C compiler for bench/oneshot.c")
def test_a_tiny_run_answers_every_request() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--peers", "40", "--seconds", "0.3", "--runs", "1",
         "--inactive", "2", "--clients", "4"],
        capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if re.match(r"│ 40 ", line)]
    assert len(rows) == 3 * 3 + 1  # three servers per message kind, one inactive row
    for row in rows:
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells[-2] == "0", row  # the errors column
