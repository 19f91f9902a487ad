"""bt.layout: the piece space of v1 (pieces across files, BEP 47 pads) and v2 (aligned)."""

from __future__ import annotations

from p2pshare.bt.layout import Layout, Run

K = 16 * 1024


def test_v1_pieces_span_files() -> None:
    layout = Layout([(("a",), 3 * K, False, None), (("b",), 2 * K, False, None)], 2 * K,
                    aligned=False)
    assert layout.count == 3 and layout.size == 5 * K
    assert layout.piece_runs(1) == [Run(0, 2 * K, K), Run(1, 0, K)]
    assert layout.length(2) == K
    assert layout.mask_of([layout.files[1]]) == 0b110


def test_pads_read_as_zeros_and_v2_aligns() -> None:
    padded = Layout([(("a",), K, False, None), ((".pad", "16384"), K, True, None),
                     (("b",), K, False, None)], 2 * K, aligned=False)
    aligned = Layout([(("a",), K, False, b"r" * 32), (("b",), K, False, b"s" * 32)], 2 * K,
                     aligned=True)
    assert padded.piece_runs(0) == [Run(0, 0, K), Run(None, 0, K)]
    assert aligned.piece_runs(0) == [Run(0, 0, K)]  # a v2 file's last piece ends with it
    assert (padded.length(0), aligned.length(0)) == (2 * K, K)
    assert aligned.short_pieces() == {0: K, 1: K} and padded.short_pieces() == {1: K}
    assert [f.offset for f in aligned.files] == [0, 2 * K]
    assert aligned.count == padded.count == 2
    place = aligned.v2_place(1)
    assert place is not None and place[0].path == ("b",) and place[1] == 0


def test_empty_files_hold_no_piece() -> None:
    layout = Layout([(("e",), 0, False, None), (("a",), K + 1, False, None)], K,
                    aligned=True)
    assert layout.pieces_of(layout.files[0]) == range(0)
    assert layout.piece_runs(1) == [Run(1, K, 1)]
    assert layout.bytes_in(0b11) == K + 1
