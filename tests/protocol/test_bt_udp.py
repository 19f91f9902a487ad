"""The UDP tracker codec (BEP 15): every packet both ways, byte by byte, and properties."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol.bt_tracker import (
    AnnounceAnswer,
    AnnounceEvent,
    AnnounceRequest,
    AnnounceResult,
    ScrapeStats,
    TrackerFailure,
    TrackerPeer,
)
from p2pshare.protocol.bt_udp import (
    UdpAction,
    UdpAnnounce,
    UdpConnect,
    UdpScrape,
    encode_udp_announce,
    encode_udp_announce_answer,
    encode_udp_connect,
    encode_udp_connect_answer,
    encode_udp_error,
    encode_udp_scrape,
    encode_udp_scrape_answer,
    parse_udp_answer,
    parse_udp_request,
    udp_connection_id,
    udp_transaction_id,
)

HASH = bytes(range(20))
PEER_ID = b"-LT2110-abcdefghijkl"
CONNECT = bytes.fromhex("0000041727101980" "00000000" "12345678")
# An announce as BEP 15 lays it out: connection id 0x0102030405060708, transaction 7,
# hash, peer id, downloaded 1, left 2, uploaded 3, event started (2), ip 0, key 0xabcd,
# numwant -1, port 6881.
ANNOUNCE = (bytes.fromhex("0102030405060708" "00000001" "00000007") + HASH + PEER_ID
            + struct.pack(">qqqiIiiH", 1, 2, 3, 2, 0, 0xABCD, -1, 6881))
REQUEST = AnnounceRequest(HASH, PEER_ID, 6881, uploaded=3, downloaded=1, left=2,
                          event=AnnounceEvent.STARTED, numwant=None, key=b"\x00\x00\xab\xcd")


def test_connect() -> None:
    assert encode_udp_connect(0x12345678) == CONNECT
    assert parse_udp_request(CONNECT, 74) == UdpConnect(0x12345678)
    answer = encode_udp_connect_answer(0x12345678, -2)
    assert answer == bytes.fromhex("00000000" "12345678" "fffffffffffffffe")
    assert parse_udp_answer(answer, 0x12345678, UdpAction.CONNECT) == -2
    with pytest.raises(RemoteProtocolError, match="protocol id"):
        parse_udp_request(b"\x00" * 8 + CONNECT[8:], 74)


def test_announce_request_both_ways() -> None:
    assert len(ANNOUNCE) == 98
    assert encode_udp_announce(0x0102030405060708, 7, REQUEST) == ANNOUNCE
    assert parse_udp_request(ANNOUNCE, 74) == UdpAnnounce(0x0102030405060708, 7, REQUEST)
    # BEP 41 options after the 98 bytes (libtorrent sends the URL's path) are ignored.
    options = ANNOUNCE + b"\x02\x09/announce\x01"
    assert parse_udp_request(options, 74) == UdpAnnounce(0x0102030405060708, 7, REQUEST)
    for cut in range(16, 98):
        with pytest.raises(RemoteProtocolError):
            parse_udp_request(ANNOUNCE[:cut], 74)


@pytest.mark.parametrize(("offset", "value", "why"), [
    (80, struct.pack(">i", 4), "event"), (56, struct.pack(">q", -1), "negative"),
])
def test_bad_announce_fields(offset: int, value: bytes, why: str) -> None:
    bad = ANNOUNCE[:offset] + value + ANNOUNCE[offset + len(value):]
    with pytest.raises(RemoteProtocolError, match=why):
        parse_udp_request(bad, 74)


def test_announce_answer_by_family() -> None:
    peers = (TrackerPeer("127.0.0.1", 6881), TrackerPeer("::1", 6882))
    answer = AnnounceAnswer(1800, 900, complete=5, incomplete=6, downloaded=0, peers=peers)
    v4 = encode_udp_announce_answer(7, answer, ipv6=False)
    assert v4 == bytes.fromhex("00000001" "00000007" "00000708" "00000006" "00000005"
                               "7f000001" "1ae1")
    v6 = encode_udp_announce_answer(7, answer, ipv6=True)
    assert v6[20:] == bytes(15) + b"\x01\x1a\xe2"
    assert parse_udp_answer(v4, 7, UdpAction.ANNOUNCE) == AnnounceResult(
        1800, [("127.0.0.1", 6881)], complete=5, incomplete=6)
    result = parse_udp_answer(v6, 7, UdpAction.ANNOUNCE, ipv6=True)
    assert isinstance(result, AnnounceResult) and result.peers == [("::1", 6882)]
    with pytest.raises(RemoteProtocolError, match="multiple"):
        parse_udp_answer(v4 + b"\x00", 7, UdpAction.ANNOUNCE)


def test_scrape_both_ways() -> None:
    request = encode_udp_scrape(9, 3, [HASH, b"y" * 20])
    assert request == bytes.fromhex("0000000000000009" "00000002" "00000003") + HASH + b"y" * 20
    assert parse_udp_request(request, 74) == UdpScrape(9, 3, (HASH, b"y" * 20))
    with pytest.raises(RemoteProtocolError, match="at most 1"):
        parse_udp_request(request, 1)
    for bad in (request[:16], request[:-1]):
        with pytest.raises(RemoteProtocolError):
            parse_udp_request(bad, 74)
    answer = encode_udp_scrape_answer(3, [ScrapeStats(1, 2, 3), ScrapeStats(2**40, 0, 0)])
    assert answer == bytes.fromhex("00000002" "00000003" "00000001" "00000002" "00000003"
                                   "7fffffff" "00000000" "00000000")
    assert parse_udp_answer(answer, 3, UdpAction.SCRAPE) == [
        ScrapeStats(1, 2, 3), ScrapeStats(2**31 - 1, 0, 0)]


def test_errors_and_foreign_answers() -> None:
    error = encode_udp_error(5, "Connection ID missmatch.")
    assert error == bytes.fromhex("00000003" "00000005") + b"Connection ID missmatch."
    with pytest.raises(TrackerFailure, match="missmatch"):
        parse_udp_answer(error, 5, UdpAction.ANNOUNCE)
    with pytest.raises(RemoteProtocolError, match="another transaction"):
        parse_udp_answer(error, 6, UdpAction.ANNOUNCE)
    with pytest.raises(RemoteProtocolError, match="another action"):
        parse_udp_answer(encode_udp_connect_answer(5, 1), 5, UdpAction.ANNOUNCE)
    assert udp_transaction_id(ANNOUNCE) == 7 and udp_transaction_id(b"short") is None
    with pytest.raises(RemoteProtocolError, match="unknown action"):
        parse_udp_request(ANNOUNCE[:8] + b"\x00\x00\x00\x09" + ANNOUNCE[12:], 74)


def test_connection_ids_name_the_address_and_the_slot() -> None:
    key = b"k" * 32
    one = udp_connection_id(key, "10.0.0.1", 100)
    assert one == udp_connection_id(key, "10.0.0.1", 100)
    assert len({one, udp_connection_id(key, "10.0.0.2", 100),
                udp_connection_id(key, "10.0.0.1", 101),
                udp_connection_id(b"other", "10.0.0.1", 100)}) == 4
    assert -(2**63) <= one < 2**63


# ------------------------------------------------------------------ properties
requests = st.builds(
    AnnounceRequest, info_hash=st.binary(min_size=20, max_size=20),
    peer_id=st.binary(min_size=20, max_size=20), port=st.integers(1, 65535),
    uploaded=st.integers(0, 2**63 - 1), downloaded=st.integers(0, 2**63 - 1),
    left=st.integers(0, 2**63 - 1), event=st.sampled_from(AnnounceEvent),
    numwant=st.none() | st.integers(0, 2**31 - 1), key=st.binary(min_size=4, max_size=4))


@given(requests, st.integers(-(2**63), 2**63 - 1), st.integers(-(2**31), 2**31 - 1))
def test_any_announce_round_trips(request: AnnounceRequest, cid: int, tid: int) -> None:
    assert parse_udp_request(encode_udp_announce(cid, tid, request), 74) == UdpAnnounce(
        cid, tid, request)


@given(st.binary(max_size=200))
def test_random_datagrams_give_a_request_or_a_protocol_error(data: bytes) -> None:
    try:
        parse_udp_request(data, 74)
    except RemoteProtocolError:
        pass
    tid = struct.unpack_from(">i", data + bytes(8), 4)[0]  # the answer's own: parse on
    for action in (UdpAction.CONNECT, UdpAction.ANNOUNCE, UdpAction.SCRAPE):
        try:
            parse_udp_answer(data, tid, action, ipv6=bool(data[:1]) and data[0] % 2 == 1)
        except (RemoteProtocolError, TrackerFailure):
            pass
