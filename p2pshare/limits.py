"""Every limit and timeout in p2pshare, with its unit and the reason for its value.

Going over a size limit while decoding raises ``RemoteProtocolError`` (status 400) and the
connection is closed; going over a time limit closes the connection. The README's
"Limits and timeouts" table is generated from nothing: keep it in step with this file.
"""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
SECONDS = 1.0

# --- framing -----------------------------------------------------------------------------
# A request or status line. The longest legal P2P-CI line is a LIST data line: "RFC",
# a number, a title (MAX_TITLE), a hostname (MAX_HOSTNAME) and a port: well under 1 KiB.
# 8 KiB matches common HTTP servers' default and leaves room for tolerant input.
MAX_LINE = 8 * KiB
# Header lines in one message. P2P-CI uses at most 5; 32 tolerates extensions.
MAX_HEADERS = 32
# Bytes of all header lines together (request line included) before the blank line.
MAX_HEAD = 16 * KiB
# A request body (P2P-DI and swarm requests may carry one; P2P-CI requests never do).
MAX_REQUEST_BODY = 1 * MiB
# Lines in one P2S response (LIST of a huge index is streamed, but a client holding it
# in memory needs a bound): 10 million records.
MAX_RESPONSE_LINES = 10_000_000

# --- values ------------------------------------------------------------------------------
MAX_TITLE = 512  # characters of an RFC title
MAX_HOSTNAME = 255  # RFC 1035 limit on a domain name's length
MAX_OS = 256  # characters of an OS header value
MAX_RFC_NUMBER = 999_999  # RFC numbers are positive; the series is below 10,000 today
MIN_RFC_NUMBER = 1
MAX_PORT = 65_535

# --- time --------------------------------------------------------------------------------
# A connection to the index server that says nothing for this long is closed and its
# records removed. Peers that hold their connection open without traffic send nothing,
# so the index server relies on TCP keepalive (below) instead of this for live peers;
# the idle limit applies to connections that never completed a first request.
FIRST_REQUEST_TIMEOUT = 30 * SECONDS
# Time to receive a whole request head once its first byte arrived (slowloris defence).
HEAD_TIMEOUT = 10 * SECONDS
# Upload (GET) connections: one request, then the file, then close.
UPLOAD_IDLE_TIMEOUT = 30 * SECONDS
# While receiving a P2S response, a silence this long after the status line ends the
# message: tolerates servers that omit the terminating blank line (spec ambiguity A2).
RESPONSE_LINGER = 1.0 * SECONDS
# How long a client waits for any response before giving up.
RESPONSE_TIMEOUT = 30 * SECONDS
# A peer's connect() to the index server or another peer.
CONNECT_TIMEOUT = 10 * SECONDS
# TCP keepalive on index-server connections: a vanished host is noticed after about
# KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT = 60 + 10 * 6 = 120 seconds.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 6

# --- concurrency -------------------------------------------------------------------------
# Simultaneous connections one server accepts; beyond it new connections are closed at once.
MAX_CONNECTIONS = 20_000
# Simultaneous uploads one peer serves; beyond it GET gets a clear error and a close.
MAX_UPLOADS = 64

# --- bulk I/O ----------------------------------------------------------------------------
# Receive buffer for file bodies: large reads, written straight to disk.
RECV_CHUNK = 1 * MiB
