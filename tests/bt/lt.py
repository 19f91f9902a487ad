"""libtorrent (the PyPI wheel) in the test process: torrents made by it, and a session that
seeds or downloads on loopback with DHT, LSD, UPnP, NAT-PMP and uTP off."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

lt = pytest.importorskip("libtorrent")

K = 16 * 1024
KINDS = {"v1": "v1_only", "v2": "v2_only", "hybrid": None}


def write_data(root: Path, name: str, sizes: list[int], seed: int = 1) -> Path:
    """A file (one size) or a folder of files ``f0.bin``, ``sub/f1.bin``... of random bytes."""
    rng = random.Random(seed)
    if len(sizes) == 1:
        path = root / name
        path.write_bytes(rng.randbytes(sizes[0]))
        return path
    for i, size in enumerate(sizes):
        where = root / name / ("sub" if i % 2 else "") / f"f{i}.bin"
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_bytes(rng.randbytes(size))
    return root / name


def make_torrent(path: Path, kind: str, piece_size: int = 2 * K,
                 trackers: tuple[str, ...] = ()) -> bytes:
    """The .torrent libtorrent makes of ``path`` (``kind``: v1, v2 or hybrid), with
    libtorrent 2.1's ``list_files`` (the same bytes as the ``file_storage`` it deprecates)."""
    flag = KINDS[kind]
    flags = getattr(lt.create_torrent, flag) if flag else 0
    ct = lt.create_torrent(lt.list_files(str(path)), piece_size, flags=flags)
    for tier, url in enumerate(trackers):
        ct.add_tracker(url, tier)
    lt.set_piece_hashes(ct, str(path.parent))
    data: bytes = lt.bencode(ct.generate())
    return data


class LtPeer:
    """One libtorrent session on 127.0.0.1 with one torrent."""

    def __init__(self, save: Path, *, torrent: bytes | None = None, magnet: str = "",
                 seed: bool = False) -> None:
        pack: dict[str, Any] = dict(lt.default_settings())
        pack.update({"listen_interfaces": "127.0.0.1:0", "enable_dht": False,
                     "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
                     "enable_outgoing_utp": False, "enable_incoming_utp": False,
                     "allow_multiple_connections_per_ip": True,
                     "alert_mask": lt.alert_category.error | lt.alert_category.status})
        self.session = lt.session(pack)
        params = lt.parse_magnet_uri(magnet) if magnet else lt.add_torrent_params()
        if torrent is not None:
            params.ti = lt.torrent_info(lt.bdecode(torrent))
        params.save_path = str(save)
        if seed:
            params.flags |= lt.torrent_flags.seed_mode
        self.handle = self.session.add_torrent(params)
        if seed:  # it answers peers once its torrent shows as seeding and runs (unpaused)
            self._wait(lambda: self.handle.status().is_seeding
                       and not self.handle.status().paused, 60)

    @property
    def port(self) -> int:
        port: int = self.session.listen_port()
        return port

    def connect(self, port: int) -> None:
        self.handle.connect_peer(("127.0.0.1", port))

    def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                raise AssertionError(f"libtorrent not done: {self.handle.status().progress}")
            self.session.wait_for_alert(100)
            self.session.pop_alerts()

    def wait_seeding(self, timeout: float = 60) -> None:
        """Until every piece is verified and written (flushed) to the file."""
        end = time.monotonic() + timeout
        self._wait(lambda: self.handle.status().is_seeding, timeout)
        self.handle.flush_cache()
        self.handle.save_resume_data()  # answered once the files are flushed
        while time.monotonic() < end:
            self.session.wait_for_alert(100)
            if any(isinstance(a, lt.save_resume_data_alert) for a in self.session.pop_alerts()):
                return

    def close(self) -> None:
        self.session.remove_torrent(self.handle)
        del self.session


def same_tree(one: Path, two: Path) -> bool:
    """Whether two files, or two folders' files, hold the same bytes."""
    if one.is_file():
        return two.is_file() and one.read_bytes() == two.read_bytes()
    names = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    other = sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    return names == other and all((one / n).read_bytes() == (two / n).read_bytes()
                                  for n in names)


def hidden_left(folder: Path) -> list[str]:
    """Our temporary and record files still in ``folder``."""
    return [name for name in os.listdir(folder) if name.startswith(".p2pshare-")]
