"""The address our outgoing connections start from, when we listen on one address only.

Strategy: a BitTorrent tracker records the address an announce comes from
(docs/bittorrent.md#tracker), and a peer we dial sees us by that address too. A seed or a
fetch told to listen on one of several local addresses (``--listen 127.0.0.2``) must
therefore connect from that address, or the tracker hands out one where nothing listens.
``Origin`` holds the addresses the server was bound to (none when it listens on every
address, the wildcard: then the system chooses, as before) and gives the ``local_addr`` a
connection binds before it connects (``open_connection`` for streams; ``net.udp`` for the
tracker's datagram socket). The family must be the other side's: when the other side has
no address of any family we listen on, the connection starts from the system's choice,
and that is logged once per family (so at most twice, however many peers a tracker or
PEX names).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Any

from ..host import is_ip, plain_ip

log = logging.getLogger(__name__)

LocalAddr = tuple[str, int]  # (host, port 0): what a socket binds before it connects


class Origin:
    """The local addresses connections start from (module docstring); none: the system's
    choice.

    Args:
        hosts: the addresses a server is bound to; wildcard ones (``0.0.0.0``, ``::``)
            are left out.
    """

    def __init__(self, hosts: Iterable[str] = ()) -> None:
        self.hosts = tuple(dict.fromkeys(h for h in map(plain_ip, hosts) if _specific(h)))
        self._told: set[int] = set()  # families we fell back for, already logged

    def __repr__(self) -> str:
        return f"Origin({list(self.hosts)})"

    async def local_addr(self, host: str, port: int) -> LocalAddr | None:
        """What to bind before connecting to ``host:port``: one of our addresses of a
        family ``host`` has, or None (the system's choice).

        Raises:
            OSError: ``host`` is a name that does not resolve.
        """
        if not self.hosts:
            return None
        theirs = await _families(host, port)
        for ours in self.hosts:
            if _family(ours) in theirs:
                return ours, 0
        for family in theirs - self._told:
            self._told.add(family)
            log.warning("listening on %s only, but %s has no address of that family: "
                        "connections there start from the address the system picks",
                        " and ".join(self.hosts), host)
        return None

    async def open_connection(self, host: str, port: int, **kwargs: Any
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """``asyncio.open_connection`` from our address (``kwargs``: its own, ``limit``).

        Raises:
            OSError: the connection failed.
        """
        local = await self.local_addr(host, port)
        return await asyncio.open_connection(host, port, local_addr=local, **kwargs)


ANYWHERE = Origin()  # the system's choice, for callers that listen on every address


def _specific(host: str) -> bool:
    """Whether ``host`` is one address (not a wildcard, not a name)."""
    return is_ip(host) and not ipaddress.ip_address(host.partition("%")[0]).is_unspecified


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def _families(host: str, port: int) -> set[int]:
    """The address families ``host`` has (an IP literal's own, a name's resolved)."""
    if is_ip(host):
        return {_family(host)}
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return {info[0] for info in infos}
