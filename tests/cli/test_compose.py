"""deploy/compose.yaml (docs/scale-out.md#compose): Docker is not run here, so check what
can be checked: the file parses, it has Redis and three server nodes on it, and each
node's command is one p2pshare's own argument parser accepts. And what a deployment
without Redis relies on: the redis client is imported only when a store is made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from p2pshare.cli.main import build_parser

from ..helpers import cli_env

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


def test_the_compose_file_runs_three_valid_server_nodes_on_its_redis() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (the 'test' extra)")
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["redis"]["command"][0] == "redis-server"
    nodes = {name: s for name, s in services.items() if s["command"][0] == "p2pshare"}
    assert len(nodes) == 3
    published = set()
    for node in nodes.values():
        args = build_parser().parse_args(node["command"][1:])
        assert args.command == "server"
        assert args.store == "redis://redis:6379/0"
        assert node["depends_on"] == ["redis"]
        published.add(node["ports"][0].split(":")[0])
    assert len(published) == 3


def test_the_redis_client_is_imported_only_when_a_store_is_made() -> None:
    """The in-memory default needs nothing new: the CLI and every shared-store module
    import without the redis client (a fresh interpreter, so nothing imported it yet)."""
    code = ("import sys\n"
            "from p2pshare.cli.main import build_parser\n"
            "build_parser().parse_args(['server'])\n"
            "import p2pshare.index.shared, p2pshare.swarm.shared, p2pshare.registry.shared\n"
            "print('redis' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=cli_env(None))
    assert done.stdout.strip() == "False", done.stderr
