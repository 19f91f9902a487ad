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
