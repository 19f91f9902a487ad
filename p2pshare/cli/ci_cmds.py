"""Sub-commands of P2P-CI: server, peer, list, lookup, get, demo."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the P2P-CI sub-commands to ``sub``."""
