"""Write the seed corpus: the handouts' example messages and messages our encoders make.

    python bench/fuzz/seeds.py [FOLDER]       (default: bench/fuzz/seeds)

One folder per target, one file per seed, named after what it holds. A seed for a target
driven by ``drive`` starts with its control byte (0: fed whole, then closed; see
``drive.reads``). Replies are made by a server ``Connection`` that has read the request,
so they are exactly what our servers send; the handout's own odd forms (a P2S reply with
no blank line, A1; a GET reply with no blank line before its data) are written out by
hand from docs/p2p-ci.md#p2s-responses and docs/p2p-ci.md#get-response.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bt_wire_targets import wire_seeds
from swarm_targets import _ASKED, _FILE, MANIFEST, asked_for

from p2pshare import limits
from p2pshare.bt.create import Kind, make_torrent
from p2pshare.errors import Status
from p2pshare.protocol import Connection, Data, EndOfMessage, Event, Lines, bencode, ci, di
from p2pshare.protocol import swarm as sp
from p2pshare.protocol.magnet import Magnet, format_magnet
from p2pshare.swarm.manifest import Manifest, TreeFile

HOST = "thishost.csc.ncsu.edu"
LONG = 3000  # blank pairs in the long seeds: 6,000 bytes, within limits.MAX_LINE
HANDOUT_P2S = (
    b"ADD RFC 123 P2P-CI/1.0\r\nHost: thishost.csc.ncsu.edu\r\nPort: 5678\r\n"
    b"Title: A Proferred Official ICP\r\n\r\n",
    b"LOOKUP RFC 3457 P2P-CI/1.0\r\nHost: thishost.csc.ncsu.edu\r\nPort: 5678\r\n"
    b"Title: Requirements for IPsec Remote Access Scenarios\r\n\r\n",
    b"LIST ALL P2P-CI/1.0\r\nHost: thishost.csc.ncsu.edu\r\nPort: 5678\r\n\r\n",
    b"ADD RFC 2345 P2P-CI/1.0 \r\nHost: thishost.csc.ncsu.edu\r\nPort: 5678\r\n"
    b"Title: A Title\r\n\r\n",
)
HANDOUT_GET = b"GET RFC 1234 P2P-CI/1.0\r\nHost: somehost.csc.ncsu.edu\r\nOS: Mac OS 10.4.1\r\n\r\n"
HANDOUT_ADD_REPLY = (b"P2P-CI/1.0 200 OK\r\n"
                     b"RFC 123 A Proferred Official ICP thishost.csc.ncsu.edu 5678\r\n")
HANDOUT_GET_REPLY = (b"P2P-CI/1.0 200 OK\r\nDate: Wed, 12 Feb 2009 15:12:05 GMT\r\n"
                     b"OS: Mac OS 10.2.1\r\nLast-Modified: Thu, 21 Jan 2001 9:23:46 GMT\r\n"
                     b"Content-Length: 12\r\nContent-Type: text/text\r\ndata data da")


def requested(make: Connection, request: Iterable[Event]) -> bytes:
    """Bytes of ``request`` as our client codec sends them (``make`` is a client)."""
    return make.send_all(*request)


def answered(server: Connection, request: bytes, reply: Iterable[Event]) -> bytes:
    """Bytes of ``reply`` as our server codec sends them after reading ``request``."""
    server.receive_data(request)
    while not isinstance(server.next_event(), EndOfMessage):
        pass
    return server.send_all(*reply)


def _ci(seeds: dict[str, dict[str, bytes]]) -> None:
    p2s = {f"handout{i}": b"\0" + m for i, m in enumerate(HANDOUT_P2S)}
    p2s["pipelined"] = b"\0" + b"".join(HANDOUT_P2S)
    p2s["bare_lf"] = b"\0" + HANDOUT_P2S[0].replace(b"\r\n", b"\n")
    p2s["remove_bytewise"] = b"\1" + requested(ci.index_client_connection(), [ci.to_event(
        ci.CIRequest(ci.Method.REMOVE, 123, HOST, 5678)), EndOfMessage()])
    p2s["version505"] = b"\0" + HANDOUT_P2S[2].replace(b"CI/1.0", b"CI/2.0")
    seeds["ci_server_p2s"] = p2s
    seeds["ci_server_get"] = {"handout": b"\0" + HANDOUT_GET, "lines": b"\3" + HANDOUT_GET,
                              "bad": b"\0GET RFC x P2P-CI/1.0\r\nHost: a\r\n\r\n"}
    lookup = HANDOUT_P2S[1]
    record = ci.Record(3457, "Requirements for IPsec", HOST, 5678)
    ok = answered(ci.index_server_connection(), lookup, [
        ci.p2s_response(Status.OK), Lines((record.to_line(), record.to_line())), EndOfMessage()])
    missing = answered(ci.index_server_connection(), lookup,
                       [ci.p2s_response(Status.NOT_FOUND), EndOfMessage()])
    seeds["ci_client_p2s"] = {"ok": b"\0" + ok, "not_found": b"\0" + missing,
                              "handout_a1_pause": b"\x08" + HANDOUT_ADD_REPLY,
                              "several": b"\2" + ok + missing + ok}
    served = answered(ci.upload_server_connection(), HANDOUT_GET, [
        ci.file_response(12, 0, "Linux", 0), Data(b"data data da"), EndOfMessage()])
    error = answered(ci.upload_server_connection(), HANDOUT_GET,
                     [ci.upload_error(Status.NOT_FOUND, "Linux", 0), EndOfMessage()])
    seeds["ci_client_get"] = {"ok": b"\0" + served, "not_found": b"\0" + error,
                              "handout": b"\0" + HANDOUT_GET_REPLY}
    seeds["ci_split"] = {f"{side}_{name}": bytes([bit | data[0] & 8]) + data[1:]
                         for side, bit in (("server", 0), ("client", 0x10))
                         for name, data in seeds[f"ci_{side}_p2s"].items()}
    lookups = {f"client{n}": requested(ci.index_client_connection(), [ci.to_event(
        ci.CIRequest(ci.Method.LOOKUP, n, HOST, 5678, title)), EndOfMessage()])
        for n, title in ((1, None), (999_999, "t" * limits.MAX_TITLE))}
    seeds["ci_quick"] = {"handout": lookup, **lookups,  # raw bytes: no control byte
                         "lower_case": lookup.replace(b"Host", b"host")}
    seeds["ci_record"] = {"handout": HANDOUT_ADD_REPLY.split(b"\r\n")[1],
                          "spaces": b"RFC 1  A  B  host 1", "no_title": b"RFC 7 host 80"}


def _di(seeds: dict[str, dict[str, bytes]]) -> None:
    from di_targets import _REQUESTS, _answer

    def request(msg: di.DIRequest) -> bytes:
        return requested(di.client_connection(), [di.to_event(msg), EndOfMessage()])

    seeds["di_server"] = {f"{type(m).__name__.lower()}{i}": b"\0" + request(m)
                          for i, m in enumerate(_REQUESTS)}
    client = {}
    for i, msg in enumerate(_REQUESTS):
        event = di.to_event(msg)
        client[f"{type(msg).__name__.lower()}{i}"] = b"\0" + bytes([i]) + answered(
            di.server_connection(), request(msg), _answer(event, b""))
    seeds["di_client"] = client
    peers = di.list_reply([di.PeerAddr("peer-a.example", 65400), di.PeerAddr("10.0.0.2", 1)])
    index = di.list_reply([di.IndexLine(7, "A title with spaces", "peer-b", 65401, 7200),
                           di.IndexLine(8, "", "peer-c", 1, 0)])
    seeds["di_bodies"] = {"index": index[1], "peers": peers[1]}


def _swarm(seeds: dict[str, dict[str, bytes]]) -> None:
    def request(msg: sp.SwarmRequest) -> bytes:
        req, body = sp.to_request(msg)
        return requested(sp.client_connection(), [req, *([Data(body)] if body else []),
                                                  EndOfMessage()])

    seeds["swarm_server"] = {f"{type(m).__name__.lower()}": b"\0" + request(m) for m in _ASKED}
    seeds["swarm_server"]["pipelined"] = b"\2" + b"".join(request(m) for m in _ASKED)
    from swarm_targets import _answer
    client = {}
    for ctl in (0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x73):
        server, wire = sp.server_connection(), b""
        for msg in asked_for(ctl):
            req, body = sp.to_request(msg)
            wire += answered(server, request(msg), _answer(req, body))
        client[f"pipelined_{ctl:02x}"] = bytes([ctl]) + wire
    client["connection_peers"] = b"\x90" + client["pipelined_10"][1:]
    seeds["swarm_client"] = client
    seeds["swarm_bodies"] = {
        "ranges": b"\6" + sp.encode_ranges(0b1011_0111 | 1 << 14000).encode(),
        "bitfield": b"\2" + sp.encode_bitfield(0b101, 3).encode(),
        "peers": b"\2" + sp.encode_peers([sp.PeerEntry("10.0.0.1", 65400, 5)], 3),
        "files": b"\0" + _FILE.to_line(),
    }
    big = Manifest("a file.txt", 3 * limits.MIN_PIECE_SIZE + 1, limits.MIN_PIECE_SIZE,
                   tuple(hashlib.sha256(bytes([i])).digest() for i in range(4)))
    folder = Manifest("tree", 5, limits.MIN_PIECE_SIZE, MANIFEST.digests[:1],
                      (TreeFile("a/b.txt", 5), TreeFile("a/empty", 0)))
    seeds["swarm_manifest"] = {"small": MANIFEST.to_bytes(), "four": big.to_bytes(),
                               "empty": Manifest("empty", 0, limits.MIN_PIECE_SIZE,
                                                 ()).to_bytes(),
                               "folder": folder.to_bytes()}


def _long(seeds: dict[str, dict[str, bytes]]) -> None:
    """Each target's first seed with the first and the last blank of its first line widened
    to thousands (huge lines; patterns that backtrack on runs of blanks), each whole and
    with that line's last byte replaced by junk so that it no longer parses."""
    for files in seeds.values():
        seed = next(iter(files.values()))
        eol = seed.find(b"\n") if b"\n" in seed else len(seed)
        for where, at in (("first", seed.find(b" ", 1)), ("last", seed.rfind(b" ", 1, eol))):
            at = max(at, 1)
            wide = seed[:at] + b" \t" * LONG + seed[at:]
            end = eol + 2 * LONG
            files[f"long_{where}"] = wide
            files[f"long_{where}_cut"] = wide[:end - 1] + b"x" + wide[end:]


def _bt(seeds: dict[str, dict[str, bytes]]) -> None:
    """Torrents our creator makes (v1, v2, hybrid; a folder with pads and a single file),
    without their creation date so that the seeds do not change; bencoded values and
    magnet links of each kind."""
    torrents: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "share"
        (root / "sub").mkdir(parents=True)
        for name, size in (("sub/a", 20_000), ("b", 5), ("empty", 0)):
            (root / name).write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        for kind in Kind:
            for what, path in (("folder", root), ("file", root / "sub" / "a")):
                made = bencode.decode(make_torrent(path, kind=kind, piece_length=16 * 1024,
                                                   trackers=("http://127.0.0.1:6969/announce",)))
                assert isinstance(made, dict)
                made.pop(b"creation date"), made.pop(b"created by")
                torrents[f"{kind.value}_{what}"] = bencode.encode(made)
    seeds["bt_metainfo"] = torrents
    seeds["bt_bencode"] = {"torrent": torrents["hybrid_folder"], "int": b"i-42e",
                           "list": b"l4:spami0eli1eee", "dict": b"d1:ai1e1:bd1:cle1:dleee"}
    digest = hashlib.sha256(b"x").digest()
    seeds["bt_magnet"] = {
        "v1": format_magnet(Magnet(digest[:20], None, "a name", ("udp://t:1",))).encode(),
        "hybrid": format_magnet(Magnet(digest[:20], digest, "x", (), (("::1", 1),))).encode(),
        "base32": b"magnet:?xt=urn:btih:" + base64.b32encode(digest[:20]) + b"&dn=a+b"}


def write(folder: Path) -> int:
    seeds: dict[str, dict[str, bytes]] = {}
    _ci(seeds)
    _di(seeds)
    _swarm(seeds)
    _long(seeds)
    _bt(seeds)
    seeds |= wire_seeds()
    count = 0
    for target, files in seeds.items():
        (folder / target).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / target / name).write_bytes(data)
            count += 1
    return count


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "seeds"
    print(f"{write(out)} seeds written to {out}")
