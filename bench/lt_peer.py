#!/usr/bin/env python3
"""One libtorrent peer for ``bench/swarm --loopback`` and the interop tests (tests/bt/):
seeds or leeches one .torrent (or, leeching, a magnet link).

Strategy: one libtorrent session per process, with either libtorrent's default settings or
its ``high_performance_seed()`` preset (``--preset``), listening on one address and making
its outgoing connections from it (``--listen ADDR:PORT``), so that every peer of the
benchmark is a host of its own on the loopback network. DHT, local peer discovery, UPnP and
NAT-PMP are off: the tracker named in the .torrent is the only way peers meet. Peers speak
over TCP only, as p2pshare and aria2 do, unless ``--utp``: libtorrent's default also uses uTP
(its congestion-controlled transport over UDP), which on loopback was 5-20x slower and
spent 3x the CPU per byte (measured with bench/swarm --loopback). The seed
adds the file in seed mode (not checked again, like aria2's ``--bt-seed-unverified``).
A leech creates ``--done-file`` once every piece has arrived, passed its hash check and
been flushed to the file: libtorrent may hash a piece from memory before it is written, so
"finished" alone does not mean the file holds it (seen: a copy that differed).
Both keep serving until they are stopped (SIGTERM; the benchmark also sets "die with the
parent") or ``--max-seconds`` pass: the loop waits at most 0.2 s per alert check.
``--peer HOST:PORT`` connects to a peer directly as well, for a swarm with no tracker.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import libtorrent as lt  # the `libtorrent` wheel; only bench/swarm --loopback needs it

PRESETS = ("default", "high-performance")


def settings(preset: str, listen: str, utp: bool = False) -> dict[str, Any]:
    """The session settings: the preset, with only discovery, addresses and (unless
    ``utp``) the transport changed."""
    pack: dict[str, Any] = dict(lt.default_settings())
    if preset == "high-performance":
        pack.update(lt.high_performance_seed())
    pack.update({
        "listen_interfaces": listen,
        "outgoing_interfaces": listen.rsplit(":", 1)[0],
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False,
        # the interop tests put every peer on 127.0.0.1 (the benchmark gives each its own)
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": utp, "enable_incoming_utp": utp,
        "alert_mask": (lt.alert_category.status | lt.alert_category.error
                       | lt.alert_category.storage),
    })
    return pack


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent", type=Path)
    source.add_argument("--magnet", help="a magnet link instead of a .torrent (leech only)")
    p.add_argument("--save", type=Path, required=True, help="folder of the file")
    p.add_argument("--listen", required=True, metavar="ADDR:PORT")
    p.add_argument("--preset", choices=PRESETS, default="default")
    p.add_argument("--seed", action="store_true", help="the folder holds the whole file")
    p.add_argument("--done-file", type=Path, default=None, help="created when complete")
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.add_argument("--utp", action="store_true", help="also uTP (libtorrent's default)")
    p.add_argument("--peer", action="append", default=[], metavar="HOST:PORT",
                   help="connect to this peer too (repeatable)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    session = lt.session(settings(args.preset, args.listen, args.utp))
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(str(args.torrent))
    params.save_path = str(args.save)
    if args.seed:
        params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)
    for peer in args.peer:
        host, port = peer.rsplit(":", 1)
        handle.connect_peer((host.strip("[]"), int(port)))
    done = args.done_file is None
    end = time.monotonic() + args.max_seconds
    while time.monotonic() < end:
        session.wait_for_alert(200)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.torrent_finished_alert) and not done:
                alert.handle.flush_cache()  # answered by a cache_flushed_alert
            elif isinstance(alert, lt.cache_flushed_alert) and not done:
                args.done_file.touch()
                done = True
            elif isinstance(alert, (lt.torrent_error_alert, lt.listen_failed_alert,
                                    lt.file_error_alert)):
                print(f"lt_peer: {alert.message()}", file=sys.stderr, flush=True)
                return 1
    print("lt_peer: --max-seconds passed", file=sys.stderr)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
