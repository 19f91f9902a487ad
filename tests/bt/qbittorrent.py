"""qBittorrent (``qbittorrent-nox`` 4.5) driven through its Web API v2, with urllib only.

Strategy: qbittorrent-nox reads its settings from ``PROFILE/qBittorrent/config/
qBittorrent.conf``; the test writes that file before the start: the legal notice accepted
(4.5 has no ``--confirm-legal-notice``), the Web UI on 127.0.0.1 at a free port with no
login from localhost, the session bound to ``lo``/127.0.0.1, TCP only, and DHT, local peer
discovery, PeX, UPnP/NAT-PMP, peer-country lookups (a download of a GeoIP database) and
extra trackers off. Torrents go in with ``/api/v2/torrents/add`` (a .torrent upload or a
magnet link), peers with ``/api/v2/torrents/addPeers``, and completion is read from
``/api/v2/torrents/info``: every piece verified (progress 1) and the torrent seeding.
qBittorrent 4.5 on libtorrent 2.0 reads v1, v2 and hybrid torrents.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .clients import Client
from .procs import free_port, wait_until
from .torrents import TestTorrent

STARTUP = 20.0  # seconds qbittorrent-nox may take to answer its Web API
SEEDING = {"uploading", "stalledUP", "forcedUP", "queuedUP"}


def config(host: str, port: int, webui: int, save: Path) -> str:
    return f"""[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\Port={port}
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\InterfaceAddress={host}
Session\\BTProtocol=TCP
Session\\QueueingSystemEnabled=false
Session\\AddTrackersEnabled=false
Session\\DefaultSavePath={save}

[Network]
PortForwardingEnabled=false

[Preferences]
WebUI\\Address=127.0.0.1
WebUI\\Port={webui}
WebUI\\LocalHostAuth=false
WebUI\\UseUPnP=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
Connection\\ResolvePeerCountries=false
General\\CheckForUpdates=false
"""


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                     f"{value}\r\n".encode())
    for key, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; '
                     f'filename="{filename}"\r\nContent-Type: application/x-bittorrent'
                     f"\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; " \
        f"boundary={boundary}"


class QBittorrent(Client):
    name, kinds, program = "qbittorrent", ("v1", "v2", "hybrid"), "qbittorrent-nox"
    # On SIGTERM it spends about 5 s telling trackers it stops: 20 cases, 100 s of the
    # suite, for nothing a test reads.
    stop_grace = 0.5

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.webui = free_port()
        self.torrent: TestTorrent | None = None
        # One Web API session for all our requests: without its cookie every request
        # opens a session of its own, and each session starts a free-disk-space checker
        # thread; qBittorrent 4.5.2 crashed (SIGSEGV in FreeDiskSpaceChecker::checked,
        # qBittorrent#19732) in about 1 in 100 runs of a test that polls it.
        self.web = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def api(self, method: str, data: bytes | None = None, content_type: str = "") -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.webui}/api/v2/{method}",
                                         data=data)
        if content_type:
            request.add_header("Content-Type", content_type)
        with self.web.open(request, timeout=10) as answer:
            body: bytes = answer.read()
            return body

    def start(self) -> None:
        conf = self.home / "qBittorrent" / "config" / "qBittorrent.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text(config(self.host, self.port, self.webui, self.home / "downloads"))
        self.spawn(["qbittorrent-nox", f"--profile={self.home}"],
                   env={**os.environ, "HOME": str(self.home)})

        def answers() -> bool:
            try:
                return bool(self.api("app/version"))
            except (urllib.error.URLError, OSError):
                return False

        wait_until(answers, STARTUP, "qbittorrent-nox's Web API", self.procs)

    def add(self, torrent: TestTorrent, save: Path, magnet: bool) -> None:
        self.start()
        self.torrent = torrent
        fields = {"savepath": str(save), "paused": "false", "root_folder": "true"}
        if magnet:
            body, kind = multipart({**fields, "urls": torrent.magnet}, {})
        else:
            body, kind = multipart(fields, {"torrents": ("t.torrent", torrent.path.read_bytes())})
        assert self.api("torrents/add", body, kind) == b"Ok."

    def info(self) -> dict[str, Any] | None:
        """This client's entry of ``torrents/info`` (None before it is listed)."""
        entries: list[dict[str, Any]] = json.loads(self.api("torrents/info"))
        return entries[0] if entries else None

    def seed(self, torrent: TestTorrent) -> None:
        self.add(torrent, torrent.data_dir, magnet=False)

    def leech(self, torrent: TestTorrent, out: Path, magnet: bool = False,
              peers: Sequence[str] = ()) -> None:
        self.add(torrent, out, magnet)
        if peers:
            wait_until(self.info, STARTUP, "qBittorrent to list the torrent", self.procs)
            entry = self.info()
            assert entry is not None
            form = urllib.parse.urlencode({"hashes": entry["hash"], "peers": "|".join(peers)})
            self.api("torrents/addPeers", form.encode(),
                     "application/x-www-form-urlencoded")

    def complete(self) -> bool:
        """Every piece verified and the torrent seeding; False while the Web API does not
        answer (the caller then sees whether the process is still alive)."""
        try:
            entry = self.info()
        except (urllib.error.URLError, OSError):
            return False
        return bool(entry and entry["progress"] == 1 and entry["state"] in SEEDING)

    def wait_complete(self, timeout: float) -> None:
        """As any client's; a failure also says what qBittorrent's own API says of the
        torrent and of each of its trackers (its log says nothing of either)."""
        try:
            super().wait_complete(timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- qBittorrent's view:\n{self.view()}") from None

    def view(self) -> str:
        try:
            entry = self.info()
            if entry is None:
                return "no torrent listed"
            keys = ("hash", "state", "progress", "num_seeds", "num_leechs", "tracker")
            trackers = self.api(f"torrents/trackers?hash={entry['hash']}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"no answer ({exc})"
        listed = json.dumps({k: entry.get(k) for k in keys})
        return f"{listed}\n{trackers.decode(errors='replace')}"
