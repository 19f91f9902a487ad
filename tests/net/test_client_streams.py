"""Client streams: a name the resolver cannot encode is an unreachable peer, not a crash."""

from __future__ import annotations

import pytest

from p2pshare.errors import PeerGone
from p2pshare.net.sockstream import open_socket_stream
from p2pshare.net.stream import open_stream
from p2pshare.protocol import Connection, Role

from ..aio import arun


@pytest.mark.parametrize("opener", [open_socket_stream, open_stream], ids=["socket", "stream"])
@pytest.mark.parametrize("host", ["a" * 64 + ".example", "a..b"])
@arun
async def test_a_host_idna_refuses_is_peer_gone(opener: object, host: str) -> None:
    with pytest.raises(PeerGone, match="cannot connect"):
        await opener(host, 80, Connection(Role.CLIENT))  # type: ignore[operator]
