"""Layering: the protocol package is pure code over bytes (STYLE.md practice 1).

Nothing under ``p2pshare/protocol`` may import ``asyncio``, ``socket`` or ``redis``, nor
reach into a package of p2pshare that does I/O. Checked on the syntax tree, so a name in
a comment or a string does not count and an import inside a function does.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import p2pshare.protocol

PACKAGE = Path(p2pshare.protocol.__file__).parent
FORBIDDEN = {"asyncio", "socket", "redis"}
# What of p2pshare the protocol package may use: itself, the two leaf modules, and the
# top package (``from .. import limits`` names it).
ALLOWED_INTERNAL = ("p2pshare.protocol", "p2pshare.errors", "p2pshare.limits")
# The package and everything it may import from p2pshare: the whole closure stays pure.
MODULES = [*sorted(PACKAGE.rglob("*.py")),
           *(PACKAGE.parent / name for name in ("__init__.py", "errors.py", "limits.py"))]


def package_of(path: Path) -> str:
    """The package a relative import in ``path`` starts from."""
    parts = path.relative_to(PACKAGE.parent.parent).parts[:-1]
    return ".".join(parts)


def imported(source: str, package: str) -> Iterator[str]:
    """The absolute name of every module ``source`` imports, at any depth of its code."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield resolve(package, node.module, node.level)
            if node.level and node.module is None:  # "from . import x": x is a module
                yield from (resolve(package, alias.name, node.level) for alias in node.names)


def resolve(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = package.split(".")[: len(package.split(".")) - (level - 1)]
    return ".".join([*base, module] if module else base)


@pytest.mark.parametrize("path", MODULES, ids=[f"{p.parent.name}/{p.name}" for p in MODULES])
def test_no_io_imports(path: Path) -> None:
    for name in imported(path.read_text(encoding="utf-8"), package_of(path)):
        assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
        if name.split(".")[0] == "p2pshare" and name != "p2pshare":
            assert name.startswith(ALLOWED_INTERNAL), f"{path.name} imports {name}"


def test_every_module_is_checked() -> None:
    assert {"__init__.py", "ci.py", "_connection.py", "_grammar.py"} <= {p.name for p in MODULES}
    assert package_of(PACKAGE / "ci.py") == "p2pshare.protocol"


def test_the_checker_sees_every_form_of_import() -> None:
    source = ("import os, asyncio.events\n"
              "from socket import socket\n"
              "def f() -> None:\n    import redis\n"
              "from ..net import stream\n"
              "from . import _buffer\n"
              "from .. import limits\n")
    assert set(imported(source, "p2pshare.protocol")) == {
        "os", "asyncio.events", "socket", "redis", "p2pshare.net", "p2pshare.protocol",
        "p2pshare.protocol._buffer", "p2pshare", "p2pshare.limits"}
