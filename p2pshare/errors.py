"""One exception hierarchy for the whole package.

Strategy: every failure a caller may want to tell apart has its own class, and every
protocol failure carries the status code the other side should see (as h11's
``error_status_hint``). "Not found" is not an exception: it is an ordinary 404 response.
``PeerGone`` and ``AlreadyClosed`` split as trio's ``BrokenResourceError`` and
``ClosedResourceError`` do: the first is the other side's doing, the second our own bug.

    P2PError
    ├── ProtocolError(msg, status=400)      (abstract: raise a subclass)
    │   ├── LocalProtocolError              we asked for something the protocol forbids
    │   └── RemoteProtocolError             the other side sent something malformed
    │       └── WrongServer                 ...or is another kind of server than we asked
    ├── IntegrityError                      a SHA-256 (or length) check failed
    ├── PeerGone                            the other side is unreachable, went away or stalled
    ├── AlreadyClosed                       we used something we had already closed
    ├── LocalIOError                        our own folder refused a file (full, read-only)
    ├── StoreError                          an index store refused an operation
    └── ConfigError                         a setting that cannot be used (exit status 2)
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "AlreadyClosed",
    "ConfigError",
    "IntegrityError",
    "LocalIOError",
    "LocalProtocolError",
    "P2PError",
    "PeerGone",
    "ProtocolError",
    "RemoteProtocolError",
    "Status",
    "StoreError",
    "WrongServer",
]


class Status(IntEnum):
    """Status codes shared by every p2pshare protocol (docs/p2p-ci.md#status-codes)."""

    OK = 200
    BAD_REQUEST = 400
    NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405  # HTTP (protocol.http) only
    CONFLICT = 409  # extension: used by P2P-DI and swarm, never by P2P-CI
    CONTENT_TOO_LARGE = 413  # HTTP only
    URI_TOO_LONG = 414  # HTTP only
    NOT_IMPLEMENTED = 501  # HTTP only: a Transfer-Encoding we do not read
    BUSY = 503  # extension: swarm piece server at its upload limit; the RS over a budget
    VERSION_NOT_SUPPORTED = 505

    @property
    def phrase(self) -> str:
        return _PHRASES[self]


_PHRASES = {
    Status.OK: "OK",
    Status.BAD_REQUEST: "Bad Request",
    Status.NOT_FOUND: "Not Found",
    Status.METHOD_NOT_ALLOWED: "Method Not Allowed",
    Status.CONFLICT: "Conflict",
    Status.CONTENT_TOO_LARGE: "Content Too Large",
    Status.URI_TOO_LONG: "URI Too Long",
    Status.NOT_IMPLEMENTED: "Not Implemented",
    Status.BUSY: "Service Unavailable",
    Status.VERSION_NOT_SUPPORTED: "P2P-CI Version Not Supported",
}


class P2PError(Exception):
    """Base of every exception p2pshare raises on purpose."""


class ProtocolError(P2PError):
    """A message could not be produced or understood.

    Attributes:
        status: the status code the other side should receive (400 unless stated).
    """

    def __init__(self, msg: str, status: int = Status.BAD_REQUEST) -> None:
        if type(self) is ProtocolError:
            raise TypeError("raise LocalProtocolError or RemoteProtocolError, not ProtocolError")
        super().__init__(msg)
        self.status = Status(status)


class LocalProtocolError(ProtocolError):
    """We asked for something the protocol forbids (a bug on our side): an event a codec
    cannot send in its state, or a message before the one it depends on."""


class RemoteProtocolError(ProtocolError):
    """The other side sent bytes that break the protocol or go over a limit.

    Raised where those bytes are read and understood: a codec's ``next_event`` and
    ``interpret``, a record or manifest parser, and the body limits of the I/O layer.
    """


class WrongServer(RemoteProtocolError):
    """The other side answered, but as another kind of server than the one we asked (its
    reply's version or first line says which): the message names what we reached, e.g.
    "reached a P2P-DI/1.0 server (a registration server?), not a P2P-CI index server"."""


class IntegrityError(P2PError):
    """Data (received, or a file already in place) does not match its SHA-256 digest or
    its announced length."""


class PeerGone(P2PError):
    """The other side could not be reached, closed or reset the connection before the
    exchange finished, or neither read nor sent anything past a deadline."""


class AlreadyClosed(P2PError):
    """We used a connection or client that we had closed ourselves (e.g. an ``IndexClient``
    after ``aclose``): a bug on our side, where ``PeerGone`` would blame the other side."""


class LocalIOError(P2PError):
    """Our own file system refused a download (no space, quota, permission, read-only):
    no peer is to blame, and another holder would fail the same way.

    Attributes:
        errno: the ``OSError``'s errno (e.g. ``ENOSPC``), or None.
    """

    def __init__(self, msg: str, errno: int | None = None) -> None:
        super().__init__(msg)
        self.errno = errno


class StoreError(P2PError):
    """An index store refused a mutation (e.g. a peer touching another peer's record)."""


class OverBudget(StoreError):
    """A mutation would take a connection, a source address or the whole server past one of
    its budgets (``limits``, "index and tracker budgets"); ``everyone`` says it was the
    server's budget in all, not this requester's share."""

    def __init__(self, message: str, *, everyone: bool = False) -> None:
        super().__init__(message)
        self.everyone = everyone


class ConfigError(P2PError):
    """A configuration file or variable that cannot be used (exit status 2): a setting of
    ``cli.config``, or ``P2PSHARE_LOOP`` (``net.loops``)."""
