"""deploy/compose.yaml (docs/scale-out.md#compose): Docker is not run here, so check what
can be checked: the file parses, it has Redis and three server nodes on it, and each
node's command is one p2pshare's own argument parser accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pshare.cli.main import build_parser

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
