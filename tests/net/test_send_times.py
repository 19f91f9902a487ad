"""The kernel's account of a TCP sender (``stream.send_times``), on real loopback sockets:
a sender the network holds back (here the kernel's pacing, as a full uplink would) waits
on its congestion window, not on the receiver; a sender whose receiver does not read waits
on the receiver's window."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from p2pshare.net.stream import SendTimes, send_times

from ..aio import HOST
from ..helpers import pace, wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO is Linux's")

CHUNK = b"x" * 65536


@contextmanager
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(sender, receiver): both ends of one loopback TCP connection."""
    with socket.create_server((HOST, 0)) as listener:
        receiver = socket.create_connection(listener.getsockname())
        sender, _ = listener.accept()
    with sender, receiver:
        yield sender, receiver


def busy_for(sender: socket.socket, seconds: float) -> SendTimes:
    """Send until the kernel counts ``seconds`` of having bytes to send; its account."""
    sender.setblocking(False)

    def busy() -> SendTimes | None:
        try:
            sender.send(CHUNK)
        except BlockingIOError:
            pass
        times = send_times(sender)
        assert times is not None
        return times if times.busy >= seconds else None

    found: SendTimes = wait_for(busy, what=f"{seconds} s of sending")
    return found


def test_a_sender_held_back_by_the_network_does_not_wait_on_its_receiver() -> None:
    with pair() as (sender, receiver):
        pace(sender, 2_000_000)  # bytes a second
        done = threading.Event()

        def drain() -> None:
            while receiver.recv(1 << 20):
                pass
            done.set()

        threading.Thread(target=drain, daemon=True).start()
        times = busy_for(sender, 0.3)
        sender.shutdown(socket.SHUT_WR)
        assert times.receiver < 0.2 * times.busy, times
        assert done.wait(30)


def test_a_sender_whose_receiver_does_not_read_waits_on_it() -> None:
    with pair() as (sender, _receiver):
        times = busy_for(sender, 0.3)
        assert times.receiver > 0.8 * times.busy, times


def test_no_account_for_what_is_not_a_tcp_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert send_times(udp) is None
    assert send_times(None) is None
