"""The registration server's in-process cost per message: ``registry.server.answer`` on a
``Registry`` of 1,000 active peers (from 200 source addresses), without sockets, for
Register (again, with the cookie), KeepAlive and PQuery. Best of 5 passes over every peer.
Measures the code on PYTHONPATH, so that two trees can be compared in turn:

  PYTHONPATH=OLD python3 bench/rs_answer.py before; PYTHONPATH=. python3 bench/rs_answer.py after
"""

from __future__ import annotations

import sys
import time

from p2pshare.protocol import di
from p2pshare.registry.server import answer
from p2pshare.registry.store import Refusal, Registry

PEERS = 1000
PASSES = 5


def main() -> None:
    registry = Registry()
    cookies = []
    for i in range(PEERS):
        rec = registry.register(f"host{i}", 1000 + i, None, f"10.0.0.{i % 200}")
        assert not isinstance(rec, Refusal)
        cookies.append(rec.cookie)
    kinds: dict[str, list[di.RSRequest]] = {
        "Register": [di.Register(f"host{i}", 1000 + i, c) for i, c in enumerate(cookies)],
        "KeepAlive": [di.KeepAlive("h", c) for c in cookies],
        "PQuery": [di.PQuery("h", c) for c in cookies]}
    shown = []
    for kind, msgs in kinds.items():
        best = float("inf")
        for _ in range(PASSES):
            start = time.perf_counter()
            for i, msg in enumerate(msgs):
                answer(registry, msg, f"10.0.0.{i % 200}")
            best = min(best, (time.perf_counter() - start) / len(msgs) * 1e6)
        shown.append(f"{kind} {best:.1f} µs")
    print(sys.argv[1] if len(sys.argv) > 1 else "", " | ".join(shown))


if __name__ == "__main__":
    main()
