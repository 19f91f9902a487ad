"""docs/cli.md names every command and option the parser has, and no other.

Strategy: the parser (``build_parser``) is the truth. The document has one section per
command, headed ``### `p2pshare NAME` ``; every option a command shows in ``--help`` must
appear in its section as code (`` `--name``), and every option named in a section must be
one the command has (a hidden old spelling, or a global one, counts). The "Old spellings"
section must name every hidden alias and nothing else.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from p2pshare.cli.config import subparsers
from p2pshare.cli.main import build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
GLOBAL = {"-h", "--help", "-v", "--verbose", "-q", "--quiet", "--version"}
_SECTION = re.compile(r"^### `p2pshare ([\w-]+)`\s*$", re.M)
_OPTION = re.compile(r"`(--[a-z][a-z0-9-]*)")


def sections(text: str) -> dict[str, str]:
    """Each command's section text, by command name."""
    heads = list(_SECTION.finditer(text))
    ends = [h.start() for h in heads[1:]] + [text.find("\n## ", heads[-1].end())]
    return {h.group(1): text[h.end():end] for h, end in zip(heads, ends, strict=True)}


def options(p: argparse.ArgumentParser, *, hidden: bool) -> set[str]:
    """A command's options, its own sub-commands' too (``torrent create``)."""
    own = {s for a in p._actions if (a.help is argparse.SUPPRESS) == hidden
           for s in a.option_strings if s.startswith("--")}
    return own.union(*(options(inner, hidden=hidden) for inner in subparsers(p).values()))


def test_every_command_has_a_section() -> None:
    assert set(sections(DOC.read_text())) == set(subparsers(build_parser()))


def test_every_option_is_documented_and_no_other() -> None:
    documented = sections(DOC.read_text())
    for name, p in subparsers(build_parser()).items():
        shown, named = options(p, hidden=False) - GLOBAL, set(_OPTION.findall(documented[name]))
        assert shown <= named, f"{name}: undocumented {sorted(shown - named)}"
        unknown = named - shown - options(p, hidden=True) - GLOBAL
        assert not unknown, f"{name}: docs/cli.md names {sorted(unknown)}, which it lacks"


def test_old_spellings_are_listed() -> None:
    text = DOC.read_text()
    start = text.index('<a id="old-spellings"></a>')
    table = text[start:text.index("\n## ", text.index("\n## ", start) + 1)]
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| `")]
    listed = {(old.strip(" `"), c.strip()) for _, old, _, commands, _ in rows
              for c in commands.split(",")}
    hidden = {(o, name) for name, p in subparsers(build_parser()).items()
              for o in options(p, hidden=True)}
    assert listed == hidden


def test_every_exit_code_is_in_the_table() -> None:
    from p2pshare.cli.exits import Exit

    text = DOC.read_text()
    table = text[text.index('<a id="exit-codes"></a>'):text.index('<a id="configuration">')]
    for code in Exit:
        assert f"| {code.value} | {code.name} |" in table


def test_the_configuration_table_names_each_settings_commands() -> None:
    """Each row of the configuration table names the commands its setting gives a default
    to (what ``p2pshare config`` says), and its variable."""
    from p2pshare.cli.config import effective

    text = DOC.read_text()
    table = text[text.index('<a id="configuration"></a>'):text.index('<a id="commands">')]
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()
            if line.startswith("| `")}
    for e in effective(build_parser(), {"XDG_CONFIG_HOME": "/nonexistent"}):
        row = rows[e.setting.key]
        assert f"`{e.setting.env}`" in row
        named = set(re.findall(r"[a-z][a-z-]+", row.split("|")[-2]))
        assert set(e.commands) <= named, f"{e.setting.key}: {row}"
