"""One meaning per public name: no two modules of p2pshare define the same public name.

A name read in a traceback, a grep or an import should say which thing it is; two classes
both called ``Download`` made every reader check the import first. Checked on the syntax
tree: a module-level class, function or type alias (a CapWords assignment) whose name does
not start with ``_`` is a definition; an import, and so a re-export in an ``__init__``, is
not. A name may be defined twice only if ``SAME_ROLE`` lists it with exactly its modules.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import p2pshare

ROOT = Path(p2pshare.__file__).parent

_CODECS = frozenset({"protocol.ci", "protocol.di", "protocol.swarm"})
_SYSTEM_COMMANDS = frozenset({"cli.ci_cmds", "cli.di_cmds"})
_MENUS = frozenset({"cli.menu", "cli.di_menu"})

# Names that mean the same thing in each module listed: each module plays one role, is
# used under its own name (``ci.to_event``, ``di.to_event``) and offers the same interface.
SAME_ROLE: dict[str, frozenset[str]] = {
    # Each protocol codec: its methods, its connection objects, request event <-> message.
    "Method": _CODECS,
    "interpret": _CODECS | {"protocol.http"},
    "to_event": _CODECS - {"protocol.swarm"},
    "client_connection": _CODECS - {"protocol.ci"},
    "server_connection": _CODECS - {"protocol.ci"},
    "response": _CODECS - {"protocol.ci"} | {"protocol.http"},
    # Each system's sub-commands, which cli.main loads by module name and calls ``register``.
    "register": _SYSTEM_COMMANDS | {"cli.swarm_cmds", "cli.torrent_cmds", "cli.bt_cmds",
                                     "cli.server_cmds"},
    "cmd_peer": _SYSTEM_COMMANDS,
    "run_peer": _SYSTEM_COMMANDS,
    "cmd_get": _SYSTEM_COMMANDS,
    "get": _SYSTEM_COMMANDS,
    # Each system's interactive menu.
    "Command": _MENUS,
    "parse_command": _MENUS,
    "run_command": _MENUS,
    "run_menu": _MENUS,
    # The entry point of a program (``python -m``).
    "main": frozenset({"cli.main", "experiment.worker"}),
    # Not the same meaning: index.server's Protocol for what it needs of swarm.tracker's
}


def defined(source: str) -> set[str]:
    """The public names a module's top level defines (imports do not count)."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name) and _is_type(t.id))
    return {name for name in names if not name.startswith("_")}


def _is_type(name: str) -> bool:
    """A CapWords name (``Trace``, ``PeerKey``): a type alias, not a CONSTANT or a value."""
    return name[:1].isupper() and not name.isupper()


def definitions(root: Path) -> dict[str, set[str]]:
    """Each public name -> the modules (dotted, relative to ``root``) that define it."""
    where: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for name in defined(path.read_text(encoding="utf-8")):
            where[name].add(module)
    return where


def clashes(where: dict[str, set[str]]) -> dict[str, set[str]]:
    """The names defined in more than one module, beyond what ``SAME_ROLE`` allows."""
    return {name: modules for name, modules in where.items()
            if len(modules) > 1 and not modules <= SAME_ROLE.get(name, frozenset())}


def test_every_public_name_has_one_meaning() -> None:
    assert clashes(definitions(ROOT)) == {}


def test_every_same_role_entry_is_still_needed() -> None:
    where = definitions(ROOT)
    stale = {name for name in SAME_ROLE if len(where.get(name, set())) < 2}
    assert stale == set(), "no longer defined twice: remove from SAME_ROLE"


def test_the_checker_sees_classes_functions_and_aliases(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("class Download: ...\nasync def fetch(): ...\n"
                                   "Trace = int\nLIMIT = 3\n_Private = int\n")
    (tmp_path / "b.py").write_text("def Download(): ...\nfrom a import fetch\n"
                                   "Trace: type = str\nLIMIT = 4\n")
    (tmp_path / "__init__.py").write_text("from .a import Download, fetch\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.py").write_text("def main(): ...\ndef fetch(): ...\n")
    where = definitions(tmp_path)
    assert clashes(where) == {"Download": {"a", "b"}, "Trace": {"a", "b"},
                              "fetch": {"a", "sub.c"}}
    assert where["main"] == {"sub.c"} and "LIMIT" not in where and "_Private" not in where
