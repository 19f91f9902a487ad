"""A swarm as the dashboard shows it, from either tracker (in memory or on Redis).

Strategy: one function builds the row from what both trackers have (the FILES entry,
the members with their piece masks, and the piece census), so the two trackers cannot
show a swarm two ways. The shape is documented for scripts in docs/dashboard.md#api-state.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import limits
from ..protocol import swarm as sp
from .census import PieceCensus

SwarmRow = dict[str, object]  # one swarm in the dashboard's JSON


def swarm_row(entry: sp.FileEntry, members: Sequence[sp.PeerEntry], census: PieceCensus,
              limit: int, buckets: int) -> SwarmRow:
    """The row of one swarm: its first ``members_shown(limit)`` members (``members`` may
    hold only those: the census counts them all), availability in ``buckets``."""
    return {"id": entry.swarm, "name": entry.name, "size": entry.size,
            "piece_size": entry.piece_size, "pieces": census.count, "files": entry.files,
            "seeders": entry.seeders, "leechers": entry.leechers,
            "copies": round(entry.copies, 3),
            "held": census.held,
            "availability": census.slices(buckets),
            "peers": [{"host": m.host, "port": m.port, "have": m.pieces.bit_count()}
                      for m in members[:members_shown(limit)]]}


def members_shown(limit: int) -> int:
    """Members a swarm's row lists when tables have ``limit`` rows: at most
    ``DASHBOARD_MEMBERS`` (a reading costs rows of swarms times members each)."""
    return min(limit, limits.DASHBOARD_MEMBERS)

