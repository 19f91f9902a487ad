"""BEP 6's allowed-fast set, against the BEP's own test vectors."""

from __future__ import annotations

from p2pshare.protocol.bt_fast import allowed_fast_set


def test_bep6_vectors() -> None:
    # BEP 6: peer 80.4.4.200, info-hash of 20 0xaa bytes, 1313 pieces
    assert allowed_fast_set("80.4.4.200", b"\xaa" * 20, 1313, 7) == [
        1059, 431, 808, 1217, 287, 376, 1188]
    assert allowed_fast_set("80.4.4.200", b"\xaa" * 20, 1313, 9) == [
        1059, 431, 808, 1217, 287, 376, 1188, 353, 508]


def test_same_set_for_the_whole_slash_24_and_mapped_addresses() -> None:
    base = allowed_fast_set("80.4.4.200", b"\xaa" * 20, 1313)
    assert allowed_fast_set("80.4.4.1", b"\xaa" * 20, 1313) == base
    assert allowed_fast_set("::ffff:80.4.4.7", b"\xaa" * 20, 1313) == base
    assert allowed_fast_set("80.4.5.200", b"\xaa" * 20, 1313) != base


def test_small_torrents_and_ipv6() -> None:
    assert sorted(allowed_fast_set("10.0.0.1", b"\x01" * 20, 3)) == [0, 1, 2]
    six = allowed_fast_set("2001:db8:1:2::5", b"\x01" * 20, 1000)
    assert six == allowed_fast_set("2001:db8:1:ffff::9", b"\x01" * 20, 1000)
    assert len(set(six)) == 10
