"""The host a peer advertises: the address it tells a server that others reach it at.

Strategy: one choice for the P2P-CI peer, the P2P-DI peer and the swarm peer
(``advertised_host``). A host the user gives (``--advertise``) is used as given; a name
that does not resolve here is still used (the other peers may resolve it where we cannot),
with a one-line warning. Otherwise the peer advertises its own address on the connection
to the server it uses (``getsockname``; ``local_address_towards`` finds it without a
connection): the address that server sees, so the server's other clients can most likely
reach it, where ``gethostname()`` is often a name other machines cannot resolve. When that
address is loopback while the server was named by something other than a loopback address
or ``localhost`` (a name that resolves to 127.0.1.1, say), other machines cannot reach us
there: the note says so, for the peer's start-up line.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from .. import limits
from ..host import is_ip, is_loopback, join_hostport, plain_ip

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Advertised:
    """``host``: what the peer advertises; ``note``: what its start-up line should add
    about it (empty when the choice needs no word)."""

    host: str
    note: str = ""

    def shown(self, port: int) -> str:
        """``host:port`` for the start-up line, with the note in parentheses if any."""
        if not self.host:
            return f"port {port} (the host once the server is reached)"
        where = join_hostport(self.host, port)
        return f"{where} ({self.note})" if self.note else where


async def advertised_host(given: str | None, server_host: str, local: str) -> Advertised:
    """The host to advertise: ``given`` (the user's), else ``local``, our address on the
    connection to ``server_host`` (an IPv4-mapped address as its IPv4 form)."""
    if given:
        if is_ip(given):
            return Advertised(given)
        if await resolves(given):
            return Advertised(given, "as given")
        log.warning("%s does not resolve here; advertising it anyway", given)
        return Advertised(given, "as given; it does not resolve here")
    local = plain_ip(local)
    if is_loopback(local) and not is_loopback(server_host):
        return Advertised(local, f"loopback: {server_host} is reached over loopback, and "
                                 "other machines cannot reach us there; give --advertise")
    return Advertised(local)


async def local_address_towards(host: str, port: int) -> str:
    """The local address this host would use to reach ``host:port`` (no packet is sent).

    Raises:
        OSError: ``host`` does not resolve or no route leads there.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, kind, proto, _name, addr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.connect(addr)  # UDP: picks a route and a source address, sends nothing
        return plain_ip(str(probe.getsockname()[0]))


async def resolves(name: str) -> bool:
    """Whether ``name`` resolves here within ``limits.RESOLVE_TIMEOUT``."""
    try:
        async with asyncio.timeout(limits.RESOLVE_TIMEOUT):
            return bool(await asyncio.get_running_loop().getaddrinfo(name, None))
    except (OSError, UnicodeError, TimeoutError):
        return False
