"""Text from the network, made safe to show.

Strategy: a title, host name, file name or reason read from the network reaches the
terminal only through ``shown``: every character that is not printable (ESC, CR, a
bidirectional override...) is written as its Python escape (``\\x1b``, ``\\r``,
``\\u202e``), so no peer can move our cursor, recolour or rewrite what we print. In rich
output the result goes in a ``Text`` (``cell``), which rich never reads as markup, so a
title such as ``[/x]`` or ``[bold]`` is shown as written and cannot break the table.
"""

from __future__ import annotations

from rich.text import Text


def shown(text: str) -> str:
    """``text`` with every non-printable character (but the space) as a visible escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def shown_lines(text: str) -> str:
    """``shown`` for each line of ``text``, the line breaks kept."""
    return "\n".join(shown(line) for line in text.split("\n"))


def cell(text: str) -> Text:
    """A network string for rich (a table cell, a column): escaped, never markup."""
    return Text(shown(text))


def _escape(c: str) -> str:
    code = ord(c)
    if code <= 0xFF:
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(c, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
