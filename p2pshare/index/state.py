"""What an index server holds, as the dashboard's ``/api/state`` shows it.

Strategy: one function reads the index (in memory, or one page of the shared store) and
the tracker into plain JSON-ready values, bounded by ``limit`` rows per table whatever the
index holds: a browser polling each second must cost the server O(limit), never O(index).
Rates are not here: they need two readings in time, which the dashboard keeps
(``web.dashboard``). The shape is documented for scripts in docs/dashboard.md#api-state.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

from ..host import join_hostport
from ..protocol.ci import Record
from .server import IndexServer

_State = dict[str, object]


async def index_state(server: IndexServer, limit: int, buckets: int) -> _State:
    """The peers, RFCs and swarms ``server`` holds now, each table at most ``limit`` rows.

    Raises:
        P2PError: the shared store could not be read.
    """
    if server.shared is not None:  # one page of the newest records from the shared store
        records, _below = await server.shared.page("+inf", limit)
        peers = _peers_of(records)
        totals: tuple[int | None, int | None, int | None] = (None, None, None)
    else:
        index = server.index
        with index.listing() as listing:
            records = list(islice(listing, limit))
        peers = [{"host": h, "port": p, "records": n} for h, p, n in index.peer_rows(limit)]
        totals = (index.peer_count, index.rfc_count, len(index))
    tracker, swarm_total = server.tracker, 0
    swarms: list[dict[str, object]] = []
    if server.shared_tracker is not None:
        swarm_total, swarms = await server.shared_tracker.swarm_rows(limit, buckets)
    elif tracker is not None:
        swarm_total, swarms = tracker.swarm_count(), tracker.swarm_rows(limit, buckets)
    return {
        "connections": server.active,
        "peers": {"total": totals[0], "rows": peers},
        "rfcs": {"total": totals[1], "records": totals[2], "rows": _rfcs_of(records)},
        "swarms": {"total": swarm_total, "rows": swarms},
    }


def _peers_of(records: Iterable[Record]) -> list[dict[str, object]]:
    counts: dict[tuple[str, int], int] = {}
    for r in records:
        counts[r.host, r.port] = counts.get((r.host, r.port), 0) + 1
    return [{"host": h, "port": p, "records": n} for (h, p), n in counts.items()]


def _rfcs_of(records: Iterable[Record]) -> list[dict[str, object]]:
    """Records grouped by RFC (newest first): number, title, holders."""
    rows: dict[int, dict[str, object]] = {}
    for r in records:
        row = rows.setdefault(r.rfc, {"rfc": r.rfc, "title": r.title, "holders": []})
        holders = row["holders"]
        assert isinstance(holders, list)
        holders.append(join_hostport(r.host, r.port))
    return list(rows.values())
