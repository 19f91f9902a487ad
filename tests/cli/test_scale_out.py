"""Three ``p2pshare server --store redis://...`` nodes serve one index (docs/scale-out.md):
real processes on a real redis-server; one node is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from p2pshare.samples import write_sample_rfcs

from ..aio import HOST, free_port
from ..helpers import DEADLINE, async_retry, run_cli, wait_for
from ..redis_server import redis_server
from .test_cli import SERVER_UP, listed, peer, process, started
from .test_peer_life import add_raw

pytest.importorskip("redis", reason="the redis client is not installed (the 'redis' extra)")

LEASE = 3.0  # seconds: short, so that the test sees a lease end
GHOST = "ADD RFC 999 P2P-CI/1.0\r\nHost: ghost\r\nPort: 1\r\nTitle: Ghost\r\n\r\n"


def node(stack: ExitStack, url: str) -> tuple[subprocess.Popen[str], str]:
    """One index server node on ``url``; returns its process and ``HOST:PORT``."""
    proc = stack.enter_context(process(["server", "--listen", HOST, "--port", "0",
                                        "--store", url, "--lease", str(LEASE)]))
    return proc, f"{HOST}:{started(proc, SERVER_UP, '[Server] listening on')}"


def held(server: str) -> set[tuple[int, str, int]]:
    """(RFC, host, port) of every record LIST ALL shows through ``server``."""
    return {(r["rfc"], r["host"], r["port"]) for r in listed(server)}


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path / "redis") as found:
        yield found


def test_three_nodes_serve_one_index_and_survive_a_killed_node(url: str,
                                                                tmp_path: Path) -> None:
    with ExitStack() as stack:
        nodes = [node(stack, url) for _ in range(3)]
        addrs = [addr for _, addr in nodes]
        records = set()
        for i in range(3):  # peer i starts on node i, then tries the next ones
            folder = tmp_path / f"peer{i}"
            write_sample_rfcs(folder, {100 + i: 300})
            order = ",".join(addrs[i:] + addrs[:i])
            _, port = stack.enter_context(peer(order, folder))
            records.add((100 + i, HOST, port))
        ghost = add_raw(addrs[0], GHOST)  # a client of node 0 that will not come back
        stack.callback(ghost.close)
        everything = records | {(999, "ghost", 1)}
        for addr in addrs:  # LOOKUP/LIST through any node sees every node's records
            wait_for(lambda a=addr: held(a) == everything, what=f"all records via {addr}")  # type: ignore[misc]
        live = {r for r in records if r[0] != 100}

        nodes[0][0].kill()  # SIGKILL: node 0 cannot give anything back
        nodes[0][0].wait(timeout=DEADLINE)

        def stale_gone() -> bool:
            now = held(addrs[1])
            assert live <= now, f"a live peer's record was lost: {live - now}"
            return (999, "ghost", 1) not in now

        wait_for(stale_gone, timeout=LEASE + DEADLINE / 2, what="the dead node's records expire")

        def back() -> bool:
            seen = [held(a) for a in addrs[1:]]
            assert all(live <= s for s in seen), "a live peer's record was lost"
            return all(s == records for s in seen)

        wait_for(back, timeout=DEADLINE * 2, what="node 0's peer registered through another node")


@pytest.mark.parametrize("command", ["server", "rs"])
def test_a_store_that_cannot_be_reached_is_a_network_failure(command: str) -> None:
    done = run_cli([command, "--listen", HOST, "--port", "0",
                    "--store", f"redis://{HOST}:{free_port()}/0"])
    assert done.returncode == 4, done.stderr
    assert "cannot reach the store" in done.stderr


def test_without_the_store_s_scheme_it_is_a_usage_error() -> None:
    done = run_cli(["server", "--store", "http://x"])
    assert done.returncode == 2 and "redis://" in done.stderr


def test_the_swarm_tracker_is_shared_by_the_nodes_too(url: str) -> None:
    """``p2pshare server --store`` also puts the tracker in Redis: a swarm announced
    through one node is listed through another, and goes when its announcer leaves."""
    from p2pshare.swarm.client import TrackerClient

    from ..swarm.test_tracker import manifest

    async def check(ports: list[int]) -> None:
        m = manifest()
        seed = await TrackerClient.connect(HOST, ports[0])
        await seed.announce(m, "seedhost", 4000)
        other = await TrackerClient.connect(HOST, ports[1])
        assert [f.name for f in await other.files()] == ["f.bin"]
        await seed.aclose()

        async def gone() -> bool:
            return await other.files() == []
        await async_retry(gone, what="the seed's swarm gone through the other node")
        await other.aclose()

    with ExitStack() as stack:
        ports = [int(node(stack, url)[1].rsplit(":", 1)[1]) for _ in range(2)]
        asyncio.run(check(ports))
