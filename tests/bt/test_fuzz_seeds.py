"""The BitTorrent fuzz targets (bench/fuzz/bt_targets.py) hold on their own seeds, which parse."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "bench" / "fuzz"
sys.path.insert(0, str(FUZZ))
# bench/fuzz is not a package: its modules import by name
bt_targets = importlib.import_module("bt_targets")

TARGETS = ("bt_bencode", "bt_metainfo", "bt_magnet")


@pytest.mark.parametrize("name", TARGETS)
def test_every_seed_is_accepted(name: str) -> None:
    seeds = sorted((FUZZ / "seeds" / name).iterdir())
    assert seeds
    for seed in seeds:
        getattr(bt_targets, name)(seed.read_bytes())  # accepted: no RemoteProtocolError
