"""The HTTP tracker codec (BEP 3, 7, 23, 48): queries, answers, both sides, byte by byte."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare import limits
from p2pshare.errors import RemoteProtocolError
from p2pshare.protocol import bencode
from p2pshare.protocol.bt_tracker import (
    AnnounceAnswer,
    AnnounceEvent,
    AnnounceRequest,
    ScrapeStats,
    TrackerFailure,
    TrackerPeer,
    announce_query,
    encode_announce_answer,
    encode_failure,
    encode_scrape_answer,
    http_get,
    pack_peers,
    parse_announce,
    parse_announce_answer,
    parse_http_answer,
    parse_scrape,
    parse_scrape_answer,
    scrape_query,
    tracker_hash,
    unpack_peers,
)

HASH = bytes(range(20))
PEER_ID = b"-XX0001-aaaaaaaaaaaa"


def split(query: str) -> dict[str, list[bytes]]:
    """What an HTTP server hands a route: each field's raw byte values."""
    out: dict[str, list[bytes]] = {}
    for field in query.split("&"):
        name, _, value = field.partition("=")
        out.setdefault(urllib.parse.unquote(name), []).append(
            urllib.parse.unquote_to_bytes(value))
    return out


def base(**extra: str) -> dict[str, list[bytes]]:
    query = {"info_hash": [HASH], "peer_id": [PEER_ID], "port": [b"6881"],
             "uploaded": [b"0"], "downloaded": [b"0"], "left": [b"10"]}
    query.update({k: [v.encode()] for k, v in extra.items()})
    return query


# ------------------------------------------------------------------ server: queries
def test_a_real_clients_query_is_read() -> None:
    # aria2c 1.36's first announce, captured (info_hash, peer_id and key percent-encoded).
    raw = ("info_hash=%2B%C8%E6%82%F8%9A%AAi%F4%B9%29%F9UJ%06%8D%C4%BC%7C%7C"
           "&peer_id=A2-1-36-0-%EB%A4%E9C%21%D5%AC%0A%FB%25&uploaded=0&downloaded=0"
           "&left=100000&compact=1&key=%E9C%21%D5%AC%0A%FB%25&numwant=50&no_peer_id=1"
           "&port=6881&event=started&supportcrypto=1")
    request = parse_announce(split(raw))
    assert request == AnnounceRequest(
        info_hash=bytes.fromhex("2bc8e682f89aaa69f4b929f9554a068dc4bc7c7c"),
        peer_id=b"A2-1-36-0-\xeb\xa4\xe9C!\xd5\xac\n\xfb%", port=6881, left=100000,
        event=AnnounceEvent.STARTED, numwant=50, compact=True, no_peer_id=True,
        key=b"\xe9C!\xd5\xac\n\xfb%")


@pytest.mark.parametrize(("extra", "field"), [
    ({"info_hash": "abc"}, "info_hash"),
    ({"peer_id": "short"}, "peer_id"),
    ({"port": "65536"}, "port"),
    ({"port": "-1"}, "port"),
    ({"port": "12a"}, "port"),
    ({"left": "-5"}, "left"),
    ({"uploaded": "9" * 21}, "uploaded"),
    ({"event": "bogus"}, "event"),
    ({"compact": "2"}, "compact"),
    ({"ip": "a\x01b"}, "ip"),
])
def test_bad_fields_are_refused_by_name(extra: dict[str, str], field: str) -> None:
    with pytest.raises(RemoteProtocolError, match=field):
        parse_announce(base(**extra))


def test_missing_and_repeated_fields_are_refused() -> None:
    for name in ("info_hash", "peer_id", "port"):
        query = base()
        del query[name]
        with pytest.raises(RemoteProtocolError, match=f"missing {name}"):
            parse_announce(query)
    twice = base()
    twice["info_hash"] = [HASH, HASH[::-1]]
    with pytest.raises(RemoteProtocolError, match="more than once"):
        parse_announce(twice)


def test_defaults_and_tolerances() -> None:
    query = base()
    for name in ("uploaded", "downloaded", "left"):
        del query[name]
    request = parse_announce(query)
    assert (request.uploaded, request.downloaded, request.left) == (0, 0, None)
    assert request.compact and request.numwant is None and request.event is AnnounceEvent.NONE
    assert parse_announce(base(numwant="-1")).numwant is None  # opentracker: the default
    assert parse_announce(base(numwant="100000")).numwant == 100000  # the tracker caps it
    assert parse_announce(base(event="paused")).event is AnnounceEvent.NONE  # BEP 21
    assert not parse_announce(base(compact="0")).compact
    query = base()
    query["x_unknown"] = [b"\xff"]
    assert parse_announce(query).port == 6881


def test_scrape_queries() -> None:
    assert parse_scrape({"info_hash": [HASH, b"x" * 20, HASH]}) == [HASH, b"x" * 20]
    for bad in ({}, {"info_hash": [b"short"]},
                {"info_hash": [bytes([i]) * 20 for i in range(limits.MAX_SCRAPE_HASHES + 1)]}):
        with pytest.raises(RemoteProtocolError):
            parse_scrape(bad)


# ------------------------------------------------------------------ server: answers
def test_the_answer_is_byte_for_byte_opentrackers() -> None:
    # opentracker's answer to a leech when one other leech (127.0.0.1:6881) is there.
    opentracker = (b"d8:completei0e10:downloadedi0e10:incompletei1e8:intervali1625e"
                   b"12:min intervali812e5:peers6:\x7f\x00\x00\x01\x1a\xe1e")
    answer = AnnounceAnswer(interval=1625, min_interval=812, complete=0, incomplete=1,
                            downloaded=0, peers=(TrackerPeer("127.0.0.1", 6881, PEER_ID),))
    assert encode_announce_answer(answer) == opentracker
    result = parse_announce_answer(opentracker)
    assert (result.interval, result.min_interval, result.peers) == (1625, 812,
                                                                    [("127.0.0.1", 6881)])
    assert (result.complete, result.incomplete) == (0, 1)


def test_ipv6_peers_go_in_peers6_or_the_list() -> None:
    peers = (TrackerPeer("10.0.0.1", 1, b"a" * 20), TrackerPeer("::1", 2, b"b" * 20))
    answer = AnnounceAnswer(1800, 900, 1, 1, 0, peers)
    compact = encode_announce_answer(answer)
    assert b"5:peers6:\n\x00\x00\x01\x00\x01" in compact
    assert b"6:peers618:" + bytes(15) + b"\x01\x00\x02" in compact
    listed = encode_announce_answer(answer, compact=False)
    assert b"5:peersld2:ip8:10.0.0.17:peer id20:" + b"a" * 20 + b"4:porti1eed2:ip3:::1" in listed
    assert b"peer id" not in encode_announce_answer(answer, compact=False, no_peer_id=True)
    for body in (compact, listed):
        assert parse_announce_answer(body).peers == [("10.0.0.1", 1), ("::1", 2)]


def test_failure_and_scrape_answers() -> None:
    assert encode_failure("swarm is full") == b"d14:failure reason13:swarm is fulle"
    with pytest.raises(TrackerFailure, match="swarm is full"):
        parse_announce_answer(encode_failure("swarm is full"))
    wire = encode_scrape_answer({HASH: ScrapeStats(complete=1, downloaded=2, incomplete=3)})
    assert wire == (b"d5:filesd20:" + HASH
                    + b"d8:completei1e10:downloadedi2e10:incompletei3eeee")
    assert parse_scrape_answer(wire) == {HASH: ScrapeStats(1, 2, 3)}
    assert parse_scrape_answer(b"d5:filesdee") == {}  # opentracker, an unknown hash


@pytest.mark.parametrize("body", [
    b"", b"le", b"d5:peers0:e",  # no interval
    b"d8:intervali-1e5:peers0:e", b"d8:intervali5e5:peers5:abcdee",
    b"d8:intervali5e5:peersld2:ip3:xyz4:porti70000eeee", b"d8:intervali5e6:peers6i1ee",
    b"d8:intervali5e5:peersi3ee",
])
def test_garbled_answers_are_refused(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_announce_answer(body)


# ------------------------------------------------------------------ client side
def test_the_client_query_reads_back() -> None:
    request = AnnounceRequest(HASH, b"\x00\xff" * 10, 6881, 1, 2, 3, AnnounceEvent.STOPPED,
                              numwant=7, compact=True, key=b"k1")
    query = announce_query(request)
    assert query.startswith("info_hash=%00%01%02") and "event=stopped" in query
    assert parse_announce(split(query)) == request
    assert parse_scrape(split(scrape_query([HASH, b"y" * 20]))) == [HASH, b"y" * 20]


def test_v2_hashes_are_cut_to_20_bytes() -> None:
    assert tracker_hash(bytes(range(32))) == bytes(range(20))
    assert tracker_hash(HASH) == HASH
    with pytest.raises(ValueError):
        tracker_hash(b"x" * 21)


def test_http_requests_and_answers() -> None:
    assert http_get("::1", 80, "/announce?a=1") == (
        b"GET /announce?a=1 HTTP/1.0\r\nHost: [::1]:80\r\nAccept-Encoding: identity\r\n"
        b"Connection: close\r\n\r\n")
    wire = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nd1:ae"
    assert parse_http_answer(wire) == (200, b"d1:a")  # cut at its Content-Length
    assert parse_http_answer(wire + b"trailing") == (200, b"d1:a")
    for cut in range(len(wire) - 1):  # every answer cut short by a closed connection
        with pytest.raises(RemoteProtocolError):
            parse_http_answer(wire[:cut])
    assert parse_http_answer(b"HTTP/1.0 404 Not Found\n\nnope") == (404, b"nope")
    for bad in (wire[:-2], wire[:20], b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"garbage\r\n\r\n"):
        with pytest.raises(RemoteProtocolError):
            parse_http_answer(bad)


# ------------------------------------------------------------------ properties
requests = st.builds(
    AnnounceRequest, info_hash=st.binary(min_size=20, max_size=20),
    peer_id=st.binary(min_size=20, max_size=20), port=st.integers(1, 65535),
    uploaded=st.integers(0, 2**63 - 1), downloaded=st.integers(0, 2**63 - 1),
    left=st.none() | st.integers(0, 2**63 - 1), event=st.sampled_from(AnnounceEvent),
    numwant=st.none() | st.integers(0, 10**6), compact=st.booleans(),
    no_peer_id=st.booleans(), key=st.binary(max_size=limits.MAX_TRACKER_KEY))
peer_lists = st.lists(st.builds(
    TrackerPeer, host=st.ip_addresses().map(str), port=st.integers(1, 65535),
    peer_id=st.binary(min_size=20, max_size=20)), max_size=20)


@given(requests)
def test_any_request_round_trips(request: AnnounceRequest) -> None:
    assert parse_announce(split(announce_query(request))) == request


@given(peer_lists, st.booleans())
def test_any_answer_round_trips(peers: list[TrackerPeer], compact: bool) -> None:
    answer = AnnounceAnswer(1800, 900, 3, 4, 5, tuple(peers))
    result = parse_announce_answer(encode_announce_answer(answer, compact=compact))
    v4 = [(p.host, p.port) for p in peers if ":" not in p.host]
    v6 = [(p.host, p.port) for p in peers if ":" in p.host]
    assert result.peers == (v4 + v6 if compact else [(p.host, p.port) for p in peers])


@given(st.binary(max_size=60), st.booleans())
def test_compact_peers_round_trip_or_refuse(data: bytes, ipv6: bool) -> None:
    try:
        peers = unpack_peers(data, ipv6=ipv6)
    except RemoteProtocolError:
        assert len(data) % (18 if ipv6 else 6)
    else:
        assert pack_peers(peers, ipv6=ipv6) == data


@given(st.binary(max_size=200))
def test_random_answers_give_a_result_or_a_protocol_error(data: bytes) -> None:
    for parse in (parse_announce_answer, parse_scrape_answer, parse_http_answer):
        try:
            parse(data)
        except (RemoteProtocolError, TrackerFailure):
            pass


@given(st.dictionaries(st.sampled_from(["info_hash", "peer_id", "port", "left", "numwant",
                                        "event", "compact", "ip", "key", "uploaded"]),
                       st.lists(st.binary(max_size=24), min_size=1, max_size=2)))
def test_random_queries_give_a_request_or_a_protocol_error(query: dict[str, list[bytes]]
                                                           ) -> None:
    for parse in (parse_announce, parse_scrape):
        try:
            parse(query)
        except RemoteProtocolError:
            pass


def test_a_listed_peer_we_cannot_use_is_skipped_not_the_whole_answer() -> None:
    """BEP 3 lets a tracker's dictionary-form ``ip`` be a DNS name; a peer named so (or
    with port 0) is left out, and the other peers of the answer are still used."""
    body = bencode.encode({b"interval": 1800, b"peers": [
        {b"ip": b"peer.example", b"port": 6881},
        {b"ip": b"10.0.0.2", b"port": 0},
        {b"ip": b"10.0.0.1", b"port": 6881, b"peer id": b"p" * 20}]})
    assert parse_announce_answer(body).peers == [("10.0.0.1", 6881)]


def test_an_answer_of_millions_of_values_is_refused_before_it_is_built() -> None:
    """Attack: a tracker (any URL a torrent or magnet names) answers 4 MiB of ``le`` under
    a key we ignore: two million empty lists, over 100 MiB and seconds of the event loop,
    and the answer was then accepted. Now an answer holds at most
    ``MAX_TRACKER_ANSWER_VALUES`` values (a 200-peer dictionary-form list is about 800)."""
    flood = (b"d8:intervali1800e5:peers0:1:xl"
             + b"le" * (limits.MAX_BENCODE_SIZE // 2 - 32) + b"ee")
    with pytest.raises(RemoteProtocolError, match="values"):
        parse_announce_answer(flood)
    peers: list[bencode.Value] = [{b"ip": b"10.0.0.1", b"peer id": b"p" * 20, b"port": n}
                                  for n in range(1, 201)]
    assert len(parse_announce_answer(bencode.encode(
        {b"interval": 1800, b"peers": peers})).peers) == 200
