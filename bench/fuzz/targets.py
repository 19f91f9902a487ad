"""Every fuzz target by name, and the check that turns a target's outcome into a finding.

Strategy: a target is a plain function of one input (bytes); the invariant is the same
for all of them: it returns, or raises the protocol error (``RemoteProtocolError``, and
``IntegrityError`` for a manifest checked against its id). Anything else is a finding, and
so is an input that takes more than ``SLOW`` seconds of CPU (a hang on a bigger input: a
backtracking pattern, a quadratic loop). Findings are saved, one file per distinct
signature (exception type and the innermost line of p2pshare code it came from), with the
smallest input seen for it; the fuzzer keeps going, so one run reports every distinct
finding rather than the first.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bt_targets
import bt_tracker_targets
import bt_wire_targets
import ci_targets
import di_targets
import swarm_targets

from p2pshare.errors import IntegrityError, RemoteProtocolError

SLOW = 2.0  # CPU seconds for one input of at most MAX_LEN bytes: far past any honest parse
MAX_LEN = 16 * 1024  # twice limits.MAX_LINE: every line limit is within reach


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    codec: str  # "ci", "di", "swarm" or "bt": the campaign's time is counted per codec
    run: Callable[[bytes], None]


TARGETS = {t.name: t for t in (
    Target("ci_server_p2s", "ci", ci_targets.ci_server_p2s),
    Target("ci_server_get", "ci", ci_targets.ci_server_get),
    Target("ci_client_p2s", "ci", ci_targets.ci_client_p2s),
    Target("ci_client_get", "ci", ci_targets.ci_client_get),
    Target("ci_record", "ci", ci_targets.ci_record),
    Target("ci_split", "ci", ci_targets.ci_split),
    Target("ci_quick", "ci", ci_targets.ci_quick),
    Target("di_server", "di", di_targets.di_server),
    Target("di_client", "di", di_targets.di_client),
    Target("di_bodies", "di", di_targets.di_bodies),
    Target("swarm_server", "swarm", swarm_targets.swarm_server),
    Target("swarm_client", "swarm", swarm_targets.swarm_client),
    Target("swarm_bodies", "swarm", swarm_targets.swarm_bodies),
    Target("swarm_manifest", "swarm", swarm_targets.swarm_manifest),
    Target("bt_bencode", "bt", bt_targets.bt_bencode),
    Target("bt_metainfo", "bt", bt_targets.bt_metainfo),
    Target("bt_magnet", "bt", bt_targets.bt_magnet),
    Target("bt_wire_peer", "bt", bt_wire_targets.bt_wire_peer),
    Target("bt_wire_extension", "bt", bt_wire_targets.bt_wire_extension),
    Target("bt_udp_server", "bt", bt_tracker_targets.bt_udp_server),
    Target("bt_udp_client", "bt", bt_tracker_targets.bt_udp_client),
    Target("bt_http_query", "bt", bt_tracker_targets.bt_http_query),
    Target("bt_http_answer", "bt", bt_tracker_targets.bt_http_answer),
)}

ALLOWED = (RemoteProtocolError, IntegrityError)


class Checker:
    """Runs one target on inputs and saves each distinct finding under ``folder``."""

    def __init__(self, target: Target, folder: Path) -> None:
        self.target = target
        self.folder = folder
        self.sizes: dict[str, int] = {}  # signature -> size of the smallest saved input
        self.executions = 0

    def __call__(self, data: bytes) -> None:
        self.executions += 1
        start = time.process_time()
        try:
            self.target.run(data)
        except ALLOWED:
            pass
        except Exception as exc:  # noqa: BLE001 (that is the point: anything else is a finding)
            self._save(data, _signature(exc), "".join(traceback.format_exception(exc)))
        spent = time.process_time() - start
        if spent > SLOW:
            self._save(data, "slow", f"{spent:.2f} s of CPU for {len(data)} bytes\n")

    def _save(self, data: bytes, signature: str, report: str) -> None:
        if self.sizes.get(signature, len(data) + 1) <= len(data):
            return
        self.sizes[signature] = len(data)
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"{self.target.name}-{signature}"
        stem.with_suffix(".bin").write_bytes(data)
        stem.with_suffix(".txt").write_text(report, encoding="utf-8")


def _signature(exc: BaseException) -> str:
    """Exception type and the innermost frame in p2pshare (else the innermost at all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "p2pshare" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    digest = hashlib.sha1(f"{type(exc).__name__}@{where}".encode()).hexdigest()[:8]
    return f"{type(exc).__name__}-{digest}"


def replay(name: str, data: bytes) -> None:
    """Run one input through one target without catching anything but the allowed errors."""
    try:
        TARGETS[name].run(data)
    except ALLOWED as exc:
        print(f"allowed: {type(exc).__name__}: {exc}")
