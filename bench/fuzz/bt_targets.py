"""Fuzz targets for BitTorrent metadata: bencode, .torrent files (metainfo) and magnet links.

Each target returns or raises ``RemoteProtocolError`` (``BencodeError`` is one); anything
else is a finding. Round trips are checked where we build what we parse: a bencoded value
we accept re-encodes to the very input (canonical form only), a torrent we accept reads the
same from its own info dictionary (the BEP 9 path), and a magnet link we accept reads the
same after we write it again.
"""

from __future__ import annotations

from p2pshare.protocol import bencode
from p2pshare.protocol.metainfo import format_magnet, parse_info, parse_magnet, parse_torrent


def bt_bencode(data: bytes) -> None:
    value = bencode.decode(data)
    assert bencode.encode(value) == data, "an accepted value re-encodes to other bytes"


def bt_metainfo(data: bytes) -> None:
    torrent = parse_torrent(data)
    again = parse_info(torrent.info, v1_hash=torrent.v1_hash, v2_hash=torrent.v2_hash)
    assert again.files == torrent.files, "the info dictionary alone reads otherwise"
    assert torrent.num_pieces >= 0 and torrent.handshake_hash


def bt_magnet(data: bytes) -> None:
    magnet = parse_magnet(data.decode("utf-8", "replace"))
    assert parse_magnet(format_magnet(magnet)) == magnet, "a magnet link reads otherwise"
