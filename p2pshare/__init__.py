"""p2pshare: P2P-CI/1.0, P2P-DI/1.0 and a verified piece swarm, exact on the wire."""

from __future__ import annotations

__version__ = "0.1.0"
