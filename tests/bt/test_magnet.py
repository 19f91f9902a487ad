"""Magnet links: known links read, round trips, hostile links refused with RemoteProtocolError."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol.magnet import Magnet, format_magnet, parse_magnet

V1 = bytes(range(20))
V2 = bytes(range(32))


def test_hybrid_link() -> None:
    text = ("magnet:?xt=urn:btih:" + V1.hex() + "&xt=urn:btmh:1220" + V2.hex()
            + "&dn=My%20File+2&tr=udp%3A%2F%2Ft%3A6969&tr=http://h/a?x=1%26y&x.pe=10.0.0.1:6881"
            + "&x.pe=[::1]:7000&so=1")
    assert parse_magnet(text) == Magnet(V1, V2, "My File 2", ("udp://t:6969", "http://h/a?x=1&y"),
                                        (("10.0.0.1", 6881), ("::1", 7000)))


def test_base32_and_numbered_xt() -> None:
    text = "magnet:?xt.1=urn:btih:" + base64.b32encode(V1).decode() + "&xt.2=urn:ed2k:abc"
    assert parse_magnet(text) == Magnet(V1)


def test_empty_trackers_dropped() -> None:
    assert parse_magnet("magnet:?xt=urn:btih:" + V1.hex() + "&tr=&tr=udp://t:1&tr=").trackers == (
        "udp://t:1",)


def test_format_is_the_usual_shape() -> None:
    assert format_magnet(Magnet(V1, None, "a b&c", ("http://t/announce",))) == (
        "magnet:?xt=urn:btih:" + V1.hex() + "&dn=a%20b%26c&tr=http://t/announce")


@pytest.mark.parametrize("text", [
    "http://example.com",
    "magnet:?dn=x",  # no info-hash
    "magnet:?xt=urn:ed2k:abc",
    "magnet:?xt=urn:btih:" + "0" * 39,
    "magnet:?xt=urn:btih:" + "g" * 40,
    "magnet:?xt=urn:btih:" + "1" * 32,  # base32 has no 1
    # found by bench/fuzz (bt_magnet): a non-ASCII character in a base32 hash (ValueError)
    "magnet:?xt=urn:btih:FVYRMQVXE2YEIA\ufffd\\PSU7XLBS6XEFGD5R",
    "magnet:?xt=urn:btmh:1220" + "0" * 63,
    "magnet:?xt=urn:btmh:1220" + "0" * 64 + "&xt=urn:btmh:1220" + "1" * 64,
    "magnet:?xt=urn:btih:" + "0" * 40 + "&xt=urn:btih:" + "1" * 40,
    "magnet:?xt=urn:btih:" + "0" * 40 + "&dn=%ff",
    "magnet:?xt=urn:btih:" + "0" * 40 + "&x.pe=host",
    "magnet:?xt=urn:btih:" + "0" * 40 + "&x.pe=host:0",
    "magnet:?xt=urn:btih:" + "0" * 40 + "&x.pe=host:99999",
    "magnet:?xt=urn:btih:" + "0" * 40 + "&x.pe=[::1:80",
    "magnet:?xt=urn:btih:" + "0" * 40 + "&tr=x" * 300,
    "magnet:?xt=urn:btih:" + "0" * 40 + "&dn=" + "a" * 70_000,
])
def test_hostile_links_refused(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_magnet(text)


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_host = st.one_of(st.ip_addresses().map(str),
                  st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True))
magnets = st.builds(
    Magnet,
    st.none() | st.binary(min_size=20, max_size=20),
    st.binary(min_size=32, max_size=32),
    st.none() | _text,
    st.lists(_text.filter(bool), max_size=3, unique=True).map(tuple),
    st.lists(st.tuples(_host, st.integers(1, 65535)), max_size=3, unique=True).map(tuple),
) | st.builds(Magnet, st.binary(min_size=20, max_size=20))


@settings(max_examples=300, deadline=None)
@given(magnets)
def test_round_trip(magnet: Magnet) -> None:
    assert parse_magnet(format_magnet(magnet)) == magnet


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_gives_magnet_or_remote_error(text: str) -> None:
    for candidate in (text, "magnet:?" + text, "magnet:?xt=urn:btih:" + "a" * 40 + "&" + text):
        try:
            parse_magnet(candidate)
        except RemoteProtocolError:
            pass


_urls = st.sampled_from(["http://t/announce", "udp://[::1]:6969", "https://x.example/a?b=c&d=é",
                         "http://127.0.0.1:8080/announce?key=a%2Fb"])
lt_magnets = st.builds(Magnet, st.binary(min_size=20, max_size=20),
                       st.none() | st.binary(min_size=32, max_size=32), st.none() | _text,
                       st.lists(_urls, max_size=3, unique=True).map(tuple))


@settings(max_examples=50, deadline=None)
@given(lt_magnets)
def test_libtorrent_reads_ours_and_we_read_its(magnet: Magnet) -> None:
    lt: Any = pytest.importorskip("libtorrent", reason="the libtorrent wheel (test extra)")
    assume(bytes(20) != magnet.v1_hash and bytes(32) != magnet.v2_hash)  # lt: "no hash"
    params = lt.parse_magnet_uri(format_magnet(magnet))
    hashes = params.info_hashes
    assert (hashes.v1.to_bytes() if hashes.has_v1() else None) == magnet.v1_hash
    assert (hashes.v2.to_bytes() if hashes.has_v2() else None) == magnet.v2_hash
    assert params.name == (magnet.name or "")
    assert list(params.trackers) == list(magnet.trackers)
    info = lt.torrent_info(lt.info_hash_t(*(lt.sha1_hash(h) if len(h) == 20 else
                                            lt.sha256_hash(h) for h in
                                            filter(None, (magnet.v1_hash, magnet.v2_hash)))))
    theirs = parse_magnet(lt.make_magnet_uri(info))
    assert (theirs.v1_hash, theirs.v2_hash) == (magnet.v1_hash, magnet.v2_hash)
