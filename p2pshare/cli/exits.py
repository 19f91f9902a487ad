"""Exit statuses: one table for every command (docs/cli.md#exit-codes).

Strategy: a command tells apart what a script needs to act on, as curl and aria2 do: a
usage error (fix the command line), something that does not exist (no holder, no such
swarm), the network (retry later), a verification failure (the data was wrong), a time
limit, a local file problem (disk full, permissions), and an interruption (130, as a
shell reports SIGINT). ``from_error`` maps the package's exceptions onto the table.
"""

from __future__ import annotations

from enum import IntEnum

from ..errors import ConfigError, IntegrityError, LocalIOError, P2PError, PeerGone, ProtocolError


class Exit(IntEnum):
    OK = 0
    FAILURE = 1  # anything the other codes do not name
    USAGE = 2  # a bad command line (argparse's own status)
    NOT_FOUND = 3  # no such RFC, swarm or file; nobody holds it
    NETWORK = 4  # the server or every peer unreachable, refused, gone or not speaking our protocol
    VERIFY = 5  # the data failed its SHA-256 or length check
    TIMEOUT = 6  # --timeout passed
    LOCAL = 7  # our own files: folder missing, disk full, permission, lock held
    INTERRUPTED = 130  # SIGINT (Ctrl-C) or SIGTERM ended the command before it finished


def from_error(exc: BaseException) -> Exit:
    """The status for an exception a command could not handle itself."""
    if isinstance(exc, ConfigError):  # a setting or P2PSHARE_LOOP: used as given, wrong
        return Exit.USAGE
    if isinstance(exc, TimeoutError):
        return Exit.TIMEOUT
    if isinstance(exc, IntegrityError):
        return Exit.VERIFY
    if isinstance(exc, LocalIOError):
        return Exit.LOCAL
    if isinstance(exc, PeerGone | ProtocolError | ConnectionError):
        return Exit.NETWORK
    if isinstance(exc, OSError):
        return Exit.NETWORK if exc.filename is None else Exit.LOCAL
    if isinstance(exc, P2PError):
        return Exit.FAILURE
    return Exit.FAILURE
