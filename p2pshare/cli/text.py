"""Text from the network, made safe to show.

Strategy: a title, host name, file name or reason read from the network reaches the
terminal only through ``shown`` (``wirelog.shown``, the one copy, which the wire log uses
too): every character that is not printable (ESC, CR, a bidirectional override...) is
written as its Python escape (``\\x1b``, ``\\r``, ``\\u202e``), so no peer can move our
cursor, recolour or rewrite what we print. In rich output the result goes in a ``Text``
(``cell``), which rich never reads as markup, so a title such as ``[/x]`` or ``[bold]`` is
shown as written and cannot break the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wirelog import shown as shown
from ..wirelog import shown_lines as shown_lines

if TYPE_CHECKING:
    from rich.text import Text


def cell(text: str) -> Text:
    """A network string for rich (a table cell, a column): escaped, never markup."""
    from rich.text import Text  # rich only where a table is drawn: faster start-up

    return Text(shown(text))
