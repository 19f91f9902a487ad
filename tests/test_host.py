"""Host facts and host:port text: one spelling of each."""

from __future__ import annotations

import platform
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare import host, limits


def test_os_name_is_system_and_release() -> None:
    assert host.os_name() == f"{platform.system()} {platform.release()}".strip()


def test_os_name_is_never_empty_nor_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "")
    monkeypatch.setattr(platform, "release", lambda: "")
    assert host.os_name() == "unknown"
    monkeypatch.setattr(platform, "release", lambda: "x" * (2 * limits.MAX_OS))
    assert len(host.os_name()) == limits.MAX_OS


def test_host_name_is_the_system_s() -> None:
    assert host.host_name() == socket.gethostname()


def test_machine_names_the_host_and_python() -> None:
    line = host.machine()
    assert line.startswith(f"{host.host_name()}, ") and platform.python_version() in line


@pytest.mark.parametrize(("address", "text"), [
    (("127.0.0.1", 7734), "127.0.0.1:7734"),
    (("example.org", 80), "example.org:80"),
    (("::1", 7734), "[::1]:7734"),
    (("fe80::1%eth0", 1), "[fe80::1%eth0]:1"),
])
def test_join_hostport_brackets_ipv6(address: tuple[str, int], text: str) -> None:
    assert host.join_hostport(*address) == text
    assert host.split_hostport(text, 9) == address


@pytest.mark.parametrize(("text", "address"), [
    ("example.org", ("example.org", 9)),
    ("10.0.0.1", ("10.0.0.1", 9)),
    ("10.0.0.1:0", ("10.0.0.1", 0)),
    ("[::1]", ("::1", 9)),
    ("::1", ("::1", 9)),  # a bare IPv6 address: its colons are not a port
    ("2001:db8::7", ("2001:db8::7", 9)),
    (f"h:{limits.MAX_PORT}", ("h", limits.MAX_PORT)),
])
def test_split_hostport_takes_the_default_port_when_none_is_given(
        text: str, address: tuple[str, int]) -> None:
    assert host.split_hostport(text, 9) == address


@pytest.mark.parametrize("text", [
    "", ":7734", "[]:1", "[::1", "[::1]7734", "[::1]:", "[::1]:x", "h:", "h:port", "h:-1",
    f"h:{limits.MAX_PORT + 1}", "h:\u0661",  # an Arabic-Indic digit is not a port
])
def test_split_hostport_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        host.split_hostport(text, 9)


names = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True)
ipv6 = st.ip_addresses(v=6).map(str)


@given(names | ipv6, st.integers(0, limits.MAX_PORT))
def test_split_reads_back_what_join_writes(name: str, port: int) -> None:
    assert host.split_hostport(host.join_hostport(name, port), 1) == (name, port)


# ------------------------------------------------------------------ hosts from the network
@pytest.mark.parametrize("text", ["example.org", "example.org.", "a", "a-b.c1", "1host",
                                  "x" * 63 + ".example", "127.0.0.1", "::1", "fe80::1%eth0",
                                  "2001:db8::7734", ".".join(["a" * 63] * 3 + ["a" * 61])])
def test_valid_hosts(text: str) -> None:
    assert host.valid_host(text)


@pytest.mark.parametrize("text", ["", ".", "a..b", ".a", "a" * 64, "a" * 64 + ".example",
                                  "-a", "a-", "a_b", "münchen.de", "a b", "a/b", "[::1]",
                                  "h[/x]", "a\x00", ".".join(["a" * 63] * 4)])
def test_invalid_hosts(text: str) -> None:
    assert not host.valid_host(text)
    assert host.address_problem(text, 7734) == f"unusable host {text[:80]!r}"


@given(st.text(max_size=300))
def test_a_valid_host_never_breaks_the_resolver(text: str) -> None:
    """What ``valid_host`` accepts, the IDNA codec of getaddrinfo encodes (the crash it
    prevents is UnicodeError there)."""
    if host.valid_host(text):
        text.encode("idna")


@given(st.lists(st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", fullmatch=True),
                min_size=1, max_size=4))
def test_every_name_of_rfc1123_labels_is_valid(labels: list[str]) -> None:
    assert host.valid_host(".".join(labels))


def test_ports_out_of_range_are_a_problem() -> None:
    assert host.address_problem("example.org", 0) == "unusable port 0"
    assert host.address_problem("example.org", limits.MAX_PORT + 1) is not None
    assert host.address_problem("example.org", 1) is None
