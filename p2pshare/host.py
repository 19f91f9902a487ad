"""Facts about this host, and host:port text: the OS header, our name, address display.

Strategy: one spelling of each fact, so that every header and every log line agree. An
address is shown as ``host:port``, with an IPv6 address in brackets (``[::1]:7734``) so
that the port cannot be read as part of it; ``split_hostport`` reads back what
``join_hostport`` writes, and also a bare host (the port is then the default).

A host read from the network (an index record, a PQuery line, a tracker's peer list) is
used only if ``valid_host`` accepts it: a name of RFC 1123 labels, or an IP literal. The
resolver refuses anything else, and not always with an ``OSError`` (a 64-character label
or an empty one, ``a..b``, raises ``UnicodeError`` from the IDNA codec).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

from . import limits


def os_name() -> str:
    """The OS header value, e.g. ``Linux 6.1.0``; never empty, at most ``MAX_OS`` long."""
    import platform  # here, not at the top: only the P2P-CI and P2P-DI peers send it

    return f"{platform.system()} {platform.release()}".strip()[: limits.MAX_OS] or "unknown"


def host_name() -> str:
    """This host's name (what a peer advertises unless told otherwise)."""
    return socket.gethostname() or "localhost"


def machine() -> str:
    """A one-line description of this machine for reports: name, CPUs, Python."""
    import platform

    return f"{host_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def plain_ip(host: str) -> str:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``: how a dual-stack socket names an
    IPv4 client) as the IPv4 address it maps (``127.0.0.1``); any other host unchanged.
    Every address read from a socket goes through it, so that one client is one source
    whichever socket it came in by."""
    if host[:7].lower() != "::ffff:":
        return host
    try:
        mapped = ipaddress.IPv6Address(host).ipv4_mapped
    except ValueError:
        return host
    return host if mapped is None else str(mapped)


def join_hostport(host: str, port: int) -> str:
    """``127.0.0.1:7734``, ``example.org:7734``, ``[::1]:7734`` (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_label(host: str | None, port: int) -> str:
    """What a server listens on, for a message: ``*:7734`` for every address (host None or
    empty), else ``join_hostport``."""
    return join_hostport(host, port) if host else f"*:{port}"


def split_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port``, ``[v6]`` or a bare IPv6 address ->
    (host, port); ``default_port`` when the text names none.

    Raises:
        ValueError: no host, a bracket left open or followed by something other than
            ``:port``, or a port that is not a number from 0 to ``MAX_PORT``.
    """
    port: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"not [address]:port: {text!r}")
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text  # a name, an IPv4 address, or an IPv6 address without a port
    if not host:
        raise ValueError(f"no host in {text!r}")
    return host, default_port if port is None else parse_port(port)


# One RFC 1123 label: letters, digits and hyphens, 1 to 63 of them, no hyphen at either end.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
MAX_NAME = 253  # characters of a domain name written without its final dot (RFC 1035)


def valid_host(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 literal (a zone like ``%eth0`` allowed), or a
    name of RFC 1123 labels with at most one final dot."""
    if is_ip(host):
        return True
    name = host.removesuffix(".")
    return 0 < len(name) <= MAX_NAME and all(_LABEL.match(label) for label in name.split("."))


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (an IPv4-mapped one too) or ``localhost``."""
    name = host.lower().removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    return is_ip(host) and ipaddress.ip_address(plain_ip(host)).is_loopback


def address_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` read from the network must not be connected to, or None."""
    if not valid_host(host):
        return f"unusable host {host[:80]!r}"
    if not 1 <= port <= limits.MAX_PORT:
        return f"unusable port {port}"
    return None


def parse_port(text: str) -> int:
    """A TCP port number, 0 to ``MAX_PORT`` (0: any free port), in ASCII digits.

    Raises:
        ValueError: anything else.
    """
    if not (text.isascii() and text.isdigit()) or int(text) > limits.MAX_PORT:
        raise ValueError(f"not a port number: {text!r}")
    return int(text)
