"""What every p2pshare protocol shares in reading a request: the check order, and
``Rejected``, a request that is well framed but refused (docs/p2p-ci.md#check-order).

Its own module so that a codec needs none of the others for it (a swarm peer imports no
P2P-CI code).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import RemoteProtocolError, Status
from ._events import Request
from ._grammar import REPLACEMENT

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A request that is well framed but must be refused with ``status``."""

    status: Status
    detail: str


def checked(req: Request, version: str, interpret: Callable[[Request], T]) -> T | Rejected:
    """The check order every p2pshare protocol shares (docs/p2p-ci.md#check-order): the version
    first (505), then a head that was not UTF-8 (400: a host name or title holding U+FFFD would
    be stored and handed to others), then ``interpret``, whose ``RemoteProtocolError``
    becomes a ``Rejected`` with its status (400); never raises."""
    if req.version.upper() != version:
        return Rejected(Status.VERSION_NOT_SUPPORTED, f"version {req.version[:40]!r}")
    texts = (req.method, req.target, *(value for _name, value in req.headers))
    if any(REPLACEMENT in text for text in texts):
        return Rejected(Status.BAD_REQUEST, "the request is not valid UTF-8")
    try:
        return interpret(req)
    except RemoteProtocolError as exc:
        return Rejected(exc.status, str(exc))
