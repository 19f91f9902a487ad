"""cli/text.py: strings from the network are shown escaped, and never read as markup."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from p2pshare.cli.text import cell, shown, shown_lines

HOSTILE = ["[/x]", "[bold]b[/bold]", "\x1b[31mred\x1b[0m", "a\rb", "x\x00y", "bidi\u202e",
           "tab\there", "[link=file:///etc/passwd]x[/link]"]


@pytest.mark.parametrize(("text", "expected"), [
    ("plain [/x] é", "plain [/x] é"), ("\x1b[31m", "\\x1b[31m"), ("a\rb", "a\\rb"),
    ("a\nb", "a\\nb"), ("\u202e", "\\u202e"), ("\U000e0001", "\\U000e0001"),
    ("\x7f\x85", "\\x7f\\x85"),
])
def test_shown_escapes_what_is_not_printable(text: str, expected: str) -> None:
    assert shown(text) == expected


def test_shown_lines_keeps_the_line_breaks() -> None:
    assert shown_lines("a\x1b\nb\r") == "a\\x1b\nb\\r"


@given(st.text())
def test_shown_output_is_always_printable(text: str) -> None:
    assert shown(text).isprintable()


def test_a_table_of_hostile_cells_renders_them_as_written() -> None:
    table = Table("Title")
    for text in HOSTILE:
        table.add_row(cell(text))
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(table)
    printed = out.getvalue()
    for text in HOSTILE:
        assert shown(text) in printed
    assert not any(c in printed for c in "\x1b\r\x00\u202e")
