"""BEP 6's canonical allowed-fast set: the pieces a peer may fetch from us while choked.

Strategy: the set is a function of the peer's address (its /24 for IPv4, so that one
host cannot collect more sets by taking more addresses of its network) and the
info-hash, so every client computes the same set for a peer and a peer cannot pick which
pieces it gets. The algorithm is BEP 6's, checked against its test vectors. BEP 6 defines
it for IPv4 only; for IPv6 we mask to the /48, the smallest prefix one site is usually
given, and hash the 16 masked bytes the same way.
"""

from __future__ import annotations

import hashlib
import ipaddress

from .. import limits


def allowed_fast_set(ip: str, info_hash: bytes, piece_count: int,
                     k: int = limits.BT_ALLOWED_FAST) -> list[int]:
    """The first ``k`` allowed-fast pieces for a peer at ``ip`` (BEP 6), in BEP 6's order.

    Raises:
        ValueError: ``ip`` is not an address.
    """
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    keep = 3 if address.version == 4 else 6  # bytes of the /24 or /48
    packed = address.packed
    x = packed[:keep] + bytes(len(packed) - keep) + info_hash
    k = min(k, piece_count)
    chosen: list[int] = []
    while len(chosen) < k:
        x = hashlib.sha1(x).digest()
        for i in range(0, 20, 4):
            index = int.from_bytes(x[i:i + 4], "big") % piece_count
            if len(chosen) < k and index not in chosen:
                chosen.append(index)
    return chosen
