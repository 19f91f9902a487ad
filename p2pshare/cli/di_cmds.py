"""Sub-commands of the di system (filled in by its issue)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this system's sub-commands to sub."""
