"""Layering: the architecture of docs/architecture.md, enforced on every import.

Three checks, all on the syntax tree (a name in a comment or a string does not count; an
import inside a function does):

- the protocol package is pure code over bytes (STYLE.md practice 1): nothing under
  ``p2pshare/protocol`` imports ``asyncio``, ``socket`` or ``redis``, nor reaches into a
  package of p2pshare that does I/O;
- packages: every import inside p2pshare goes down the layer order that the "Layers"
  section of docs/architecture.md lists (or stays in its own package), and the graph of
  packages has no cycle;
- only ``p2pshare/net/`` runs an accept loop (``start_server``, ``create_server``,
  ``start_unix_server``) or opens a datagram socket (``create_datagram_endpoint``, or any
  use of ``SOCK_DGRAM``): UDP has no accept, so a bound datagram socket is a server too.

Each checker is a pure function over names, tested on a made-up tree below as well.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

import p2pshare
import p2pshare.protocol

ROOT = Path(p2pshare.__file__).parent  # p2pshare/
ARCHITECTURE = ROOT.parent / "docs" / "architecture.md"
ALL_MODULES = sorted(ROOT.rglob("*.py"))

PACKAGE = Path(p2pshare.protocol.__file__).parent
FORBIDDEN = {"asyncio", "socket", "redis"}
# What of p2pshare the protocol package may use: itself, the two leaf modules, and the
# top package (``from .. import __version__`` would name it).
ALLOWED_INTERNAL = ("p2pshare.protocol", "p2pshare.errors", "p2pshare.limits")
# The package and everything it may import from p2pshare: the whole closure stays pure.
MODULES = [*sorted(PACKAGE.rglob("*.py")),
           *(ROOT / name for name in ("__init__.py", "errors.py", "limits.py"))]
ACCEPT_LOOPS = {"start_server", "create_server", "start_unix_server"}
DATAGRAM_CALLS = {"create_datagram_endpoint"}
DATAGRAM_NAMES = {"SOCK_DGRAM"}

Graph = dict[str, dict[str, list[str]]]  # unit -> imported unit -> the modules that do


# ------------------------------------------------------------------------ reading imports
def package_of(path: Path) -> str:
    """The package a relative import in ``path`` starts from."""
    parts = path.relative_to(ROOT.parent).parts[:-1]
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether ``name`` (``p2pshare.x.y``) is a module or package of this tree."""
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(source: str, package: str) -> Iterator[str]:
    """The absolute name of every module ``source`` imports, at any depth of its code.

    ``from p2pshare.x import y`` names ``p2pshare.x.y`` when that is a module of ours and
    ``p2pshare.x`` when ``y`` is a name defined in it.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(package, node.module, node.level)
            for alias in node.names:
                inner = f"{base}.{alias.name}"
                yield inner if base.startswith("p2pshare") and is_module(inner) else base


def resolve(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = package.split(".")[: len(package.split(".")) - (level - 1)]
    return ".".join([*base, module] if module else base)


def unit_of_path(path: Path) -> str:
    """The layer unit of a file: its package under p2pshare, or its top-level module."""
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def unit_of_name(name: str) -> str | None:
    """The layer unit of an imported module name; None outside p2pshare."""
    parts = name.split(".")
    if parts[0] != "p2pshare":
        return None
    return parts[1] if len(parts) > 1 and is_module(".".join(parts[:2])) else "__init__"


def package_graph(files: Iterable[tuple[Path, str]]) -> Graph:
    """Edges between units from (path, source) of each module; self-edges dropped."""
    graph: Graph = {}
    for path, source in files:
        unit = graph.setdefault(unit_of_path(path), {})
        for name in imported(source, package_of(path)):
            target = unit_of_name(name)
            if target is not None and target != unit_of_path(path):
                unit.setdefault(target, []).append(str(path.relative_to(ROOT)))
    return graph


def tree_graph() -> Graph:
    return package_graph((p, p.read_text(encoding="utf-8")) for p in ALL_MODULES)


# ------------------------------------------------------------------------ the checkers
def read_layers(markdown: str) -> list[list[str]]:
    """The fenced block after the "## Layers" heading: one layer per line, bottom first."""
    section = markdown.split("\n## Layers", 1)[1]
    block = re.search(r"^```[^\n]*\n(.*?)^```", section, re.M | re.S)
    assert block is not None, "no fenced block in the Layers section"
    return [line.split() for line in block.group(1).splitlines() if line.strip()]


def upward_imports(graph: Graph, layers: list[list[str]]) -> list[str]:
    """Every edge that does not go to a strictly lower layer, described."""
    level = {unit: n for n, line in enumerate(layers) for unit in line}
    return [f"{src} (layer {level[src]}) imports {dst} (layer {level[dst]}) in {where[0]}"
            for src, targets in graph.items() for dst, where in targets.items()
            if level[dst] >= level[src]]


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle of the graph as a path that comes back to its start, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in graph.get(node, ()):
            if (cycle := visit(nxt, [*path, node])) is not None:
                return cycle
        done.add(node)
        return None

    return next((c for n in sorted(graph) if (c := visit(n, [])) is not None), None)


def accept_loops(source: str) -> list[str]:
    """Calls in ``source`` that open a listening server: ``x.start_server(...)`` etc."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ACCEPT_LOOPS:
                found.append(f"line {node.lineno}: {name}")
    return found


def datagram_sockets(source: str) -> list[str]:
    """Places in ``source`` that open a datagram socket: ``x.create_datagram_endpoint(...)``
    and any ``SOCK_DGRAM`` (``socket.SOCK_DGRAM`` or the bare name)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DATAGRAM_CALLS:
                found.append(f"line {node.lineno}: {name}")
        elif isinstance(node, ast.Attribute | ast.Name):
            name = node.attr if isinstance(node, ast.Attribute) else node.id
            if name in DATAGRAM_NAMES:
                found.append(f"line {node.lineno}: {name}")
    return found


# ------------------------------------------------------------------------ the tree
@pytest.mark.parametrize("path", MODULES, ids=[f"{p.parent.name}/{p.name}" for p in MODULES])
def test_no_io_imports(path: Path) -> None:
    for name in imported(path.read_text(encoding="utf-8"), package_of(path)):
        assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
        if name.split(".")[0] == "p2pshare" and name != "p2pshare":
            assert name.startswith(ALLOWED_INTERNAL), f"{path.name} imports {name}"


def test_every_package_and_module_has_a_layer() -> None:
    listed = [unit for line in read_layers(ARCHITECTURE.read_text("utf-8")) for unit in line]
    assert len(listed) == len(set(listed)), "a unit is listed twice"
    assert set(listed) == {unit_of_path(p) for p in ALL_MODULES}


def test_imports_only_go_down_the_layers() -> None:
    layers = read_layers(ARCHITECTURE.read_text("utf-8"))
    assert upward_imports(tree_graph(), layers) == []


def test_the_package_graph_has_no_cycle() -> None:
    assert find_cycle(tree_graph()) is None


@pytest.mark.parametrize("path", ALL_MODULES, ids=[str(p.relative_to(ROOT)) for p in ALL_MODULES])
def test_no_accept_loop_outside_net(path: Path) -> None:
    if path.relative_to(ROOT).parts[0] != "net":
        assert accept_loops(path.read_text(encoding="utf-8")) == [], path


@pytest.mark.parametrize("path", ALL_MODULES, ids=[str(p.relative_to(ROOT)) for p in ALL_MODULES])
def test_no_datagram_socket_outside_net(path: Path) -> None:
    if path.relative_to(ROOT).parts[0] != "net":
        assert datagram_sockets(path.read_text(encoding="utf-8")) == [], path


def test_the_graph_is_read_from_the_whole_tree() -> None:
    graph = tree_graph()
    assert {"cli", "protocol", "errors", "__init__"} <= set(graph)
    assert "net" in graph["peer"] and "protocol" in graph["net"]
    assert "__init__" in graph["cli"]  # from .. import __version__
    assert accept_loops((ROOT / "net" / "runtime.py").read_text("utf-8"))  # the loop is seen
    assert datagram_sockets((ROOT / "net" / "udp.py").read_text("utf-8"))  # and UDP's


# ------------------------------------------------------------------------ the checkers
def test_the_checker_sees_every_form_of_import() -> None:
    source = ("import os, asyncio.events\n"
              "from socket import socket\n"
              "def f() -> None:\n    import redis\n"
              "from ..net import stream\n"
              "from . import _buffer\n"
              "from .. import limits, __version__\n"
              "from ._grammar import parse_int\n")
    assert set(imported(source, "p2pshare.protocol")) == {
        "os", "asyncio.events", "socket", "redis", "p2pshare.net.stream",
        "p2pshare.protocol._buffer", "p2pshare.limits", "p2pshare",
        "p2pshare.protocol._grammar"}
    assert package_of(PACKAGE / "ci.py") == "p2pshare.protocol"
    assert [unit_of_name(n) for n in ("p2pshare", "p2pshare.limits", "p2pshare.net.stream",
                                      "p2pshare.__version__", "os")] == [
        "__init__", "limits", "net", "__init__", None]


LAYERS = [["errors"], ["protocol"], ["net"], ["peer", "index"], ["cli"]]


def test_the_layer_checker_catches_an_upward_and_a_sideways_import() -> None:
    graph = package_graph([(ROOT / "net" / "x.py", "from ..cli import main\n"),
                           (ROOT / "peer" / "y.py", "from ..index import store\n"
                                                    "from ..net import stream\n"
                                                    "from . import paths\n"),
                           (ROOT / "cli" / "z.py", "from ..peer import node\n")])
    assert graph == {"net": {"cli": ["net/x.py"]},
                     "peer": {"index": ["peer/y.py"], "net": ["peer/y.py"]},
                     "cli": {"peer": ["cli/z.py"]}}
    assert upward_imports(graph, LAYERS) == [
        "net (layer 2) imports cli (layer 4) in net/x.py",
        "peer (layer 3) imports index (layer 3) in peer/y.py"]


def test_the_cycle_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["x"]}) == ["x", "x"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_the_layers_block_is_read_bottom_first() -> None:
    text = "# A\n\n## Layers\n\nwords\n\n```\nerrors limits\n\nnet\ncli\n```\n\n## Next\n"
    assert read_layers(text) == [["errors", "limits"], ["net"], ["cli"]]


def test_the_accept_loop_checker_sees_every_spelling() -> None:
    source = ("import asyncio\n"
              "async def f(loop):\n"
              "    await asyncio.start_server(h, '', 0)\n"
              "    await loop.create_server(P, '', 0)\n"
              "    await start_unix_server(h, 'sock')\n"
              "    await loop.create_connection(P, '', 0)\n"
              "    x = 'start_server'  # a string is not a call\n")
    assert accept_loops(source) == ["line 3: start_server", "line 4: create_server",
                                    "line 5: start_unix_server"]


def test_the_datagram_checker_sees_every_spelling() -> None:
    source = ("import socket\n"
              "from socket import SOCK_DGRAM\n"
              "async def f(loop):\n"
              "    await loop.create_datagram_endpoint(P, local_addr=('', 0))\n"
              "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "    t = socket.socket(type=SOCK_DGRAM)\n"
              "    u = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
              "    x = 'create_datagram_endpoint'  # a string is not a call\n")
    assert datagram_sockets(source) == ["line 4: create_datagram_endpoint",
                                        "line 5: SOCK_DGRAM", "line 6: SOCK_DGRAM"]
