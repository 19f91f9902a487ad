"""Sample RFC files with real-looking first pages, for the demo, experiments and tests.

Strategy: each file starts with the header block and centred title of a real RFC's first
page (so that ``peer.paths.title_of`` finds the title), followed by deterministic filler
text up to the requested size. Content depends only on the RFC number and size.
"""

from __future__ import annotations

import random
from pathlib import Path

from .peer.paths import rfc_filename

# A few real RFC titles; other numbers get a made-up but plausible one.
TITLES = {
    123: "A Proferred Official ICP",
    791: "Internet Protocol",
    793: "Transmission Control Protocol",
    2345: "Domain Names and Company Name Retrieval",
    3457: "Requirements for IPsec Remote Access Scenarios",
    8446: "The Transport Layer Security (TLS) Protocol Version 1.3",
    9110: "HTTP Semantics",
}
_WORDS = ("protocol network peer packet segment host transmission index request response "
          "server client header field value section document implementation octet "
          "connection stream buffer timer state").split()


def sample_title(rfc: int) -> str:
    return TITLES.get(rfc) or f"Sample Protocol Extensions, Part {rfc}"


def sample_text(rfc: int, size: int) -> bytes:
    """An RFC-like text of exactly ``size`` bytes (at least its first page)."""
    title = sample_title(rfc)
    head = (
        f"{'Network Working Group':<60}{'A. Author':>12}\r\n"
        f"{'Request for Comments: ' + str(rfc):<60}{'Example':>12}\r\n"
        f"{'Category: Informational':<60}{'November 2026':>12}\r\n"
        "\r\n\r\n"
        f"{title:^72}\r\n"
        "\r\nStatus of this Memo\r\n\r\n"
    )
    rng = random.Random(rfc * 7919 + size)
    lines = [head]
    total = len(head.encode())
    while total < size:
        line = "   " + " ".join(rng.choice(_WORDS) for _ in range(10)) + "\r\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size] if size >= len(head) else head.encode()


def write_sample_rfcs(folder: Path, sizes: dict[int, int]) -> dict[int, Path]:
    """Write ``rfc<N>.txt`` for each number -> size; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for rfc, size in sizes.items():
        path = folder / rfc_filename(rfc)
        path.write_bytes(sample_text(rfc, size))
        written[rfc] = path
    return written
