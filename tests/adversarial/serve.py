"""Run one of the servers under attack in a process of its own, with lowered deadlines.

    python -m tests.adversarial.serve KIND FOLDER [--idle S] [--head S] [--stall S] [--big N]
                                      [--remote N] [--records N] [--max-connections N]

KIND is a key of ``targets.TARGETS``. ``--idle`` sets the idle deadlines (``IDLE``: the
wait for a request's first byte, or for the RS and RFC servers for the whole request) and
``--head`` the head-read deadline (``HEAD_TIMEOUT``, from a request's first byte), and
``--stall`` how long a receiver may take nothing (``WRITE_STALL_TIMEOUT``), in this process
only, before the server is built; ``--big N`` shares an ``rfc2.txt`` of N bytes, and
``--remote N`` gives the RFC server N records of other peers, ``--records N`` the
index server N records. Prints
``port N`` once listening, then serves until SIGTERM. A separate process lets a test
measure the server alone (its resident memory in ``/proc``) while it floods it from its
own process, as a real attacker would.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from p2pshare import limits
from p2pshare.cli._run import run

from .targets import TARGETS, rfc_folder

IDLE = ("UPLOAD_IDLE_TIMEOUT", "FIRST_REQUEST_TIMEOUT", "SWARM_IDLE_TIMEOUT")
MESSAGE_SERVERS = ("index", "rs")  # the servers p2pshare runs on uvloop when installed


async def serve(kind: str, folder: Path, limit: int | None, remote: int, records: int
                ) -> int:
    extra = {"remote": remote} if remote else {"records": records} if records else {}
    async with TARGETS[kind].start(folder, limit=limit, **extra) as port:
        print(f"port {port}", flush=True)
        await asyncio.Event().wait()  # until SIGTERM cancels us
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(TARGETS))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--idle", type=float, default=None)
    parser.add_argument("--head", type=float, default=None)
    parser.add_argument("--max-connections", type=int, default=None)
    parser.add_argument("--stall", type=float, default=None)
    parser.add_argument("--per-source", type=int, default=None,
                        help="connections (and uploads) one address may hold")
    parser.add_argument("--big", type=int, default=0, help="bytes of rfc2.txt to share")
    parser.add_argument("--remote", type=int, default=0, help="rfc: remote records held")
    parser.add_argument("--records", type=int, default=0, help="index: records held")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.per_source is not None:
        limits.MAX_CONNECTIONS_PER_SOURCE = limits.MAX_UPLOADS_PER_SOURCE = args.per_source
    if args.stall is not None:
        limits.WRITE_STALL_TIMEOUT = args.stall
    if args.big:
        (rfc_folder(args.folder) / "rfc2.txt").write_bytes(b"x" * args.big)
    for name in IDLE:
        setattr(limits, name, args.idle or getattr(limits, name))
    limits.HEAD_TIMEOUT = args.head or limits.HEAD_TIMEOUT
    # the loop `p2pshare server` and `p2pshare rs` run on (uvloop when installed), as the
    # other servers run on asyncio's: in-process tests cover the other loop
    return run(serve(args.kind, args.folder, args.max_connections, args.remote, args.records),
               fast_loop=args.kind in MESSAGE_SERVERS)


if __name__ == "__main__":
    sys.exit(main())
