"""bench/swarm loaded as a module (it has no .py name), for the tests of its pieces."""

from __future__ import annotations

import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "swarm"


@pytest.fixture(scope="module")
def swarm() -> ModuleType:
    loader = SourceFileLoader("bench_swarm", str(SCRIPT))
    spec = spec_from_loader("bench_swarm", loader)
    assert spec is not None
    module = module_from_spec(spec)
    sys.modules["bench_swarm"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module
