"""bench/swarm's self-check: a 2-host namespace topology is built, shaped, used, removed.

Needs root and ``ip netns``; skipped otherwise. It checks the harness, not p2pshare's speed
(the suite holds no timed assertion about p2pshare).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "swarm"


def _netns_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "needs iproute2 (ip, tc)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`ip netns` is unavailable: {probe.stderr.strip()}"
    return None


def test_help_runs_anywhere() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert "--quick" in out.stdout and "apt-get install" in out.stdout


def test_self_check_builds_shapes_and_removes_a_topology() -> None:
    problem = _netns_problem()
    if problem:
        pytest.skip(problem)
    out = subprocess.run([sys.executable, str(SCRIPT), "--self-check", "--prefix", "p2pst"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "self-check ok" in out.stdout
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "p2pst-" not in left
