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
# A server ending a connection (after a GET's file, or a 400 for lost framing) half-closes
# and drops what still arrives, for at most this long, before it closes: closing with
# unread input would send a reset, which can destroy the reply's end in flight.
CLOSE_LINGER = 2 * SECONDS
# While receiving a P2S response, a silence this long after the status line ends the
# message: tolerates servers that omit the terminating blank line (docs/p2p-ci.md#a2).
RESPONSE_LINGER = 1.0 * SECONDS
# How long a client waits for any response before giving up.
RESPONSE_TIMEOUT = 30 * SECONDS
# A peer's connect() to the index server or another peer.
CONNECT_TIMEOUT = 10 * SECONDS
# Checking, once at start-up, that the name a peer is told to advertise resolves here; a
# resolver slower than this counts as "does not resolve" (a warning, never a failure).
RESOLVE_TIMEOUT = 3 * SECONDS
# A peer that lost the index server (a P2P-CI peer, a swarm seeder) tries to reconnect
# after RECONNECT_FIRST, doubling the delay after each failure up to RECONNECT_MAX: quick
# after a restart, and no storm of connects while it is down. Each delay is spread by up
# to RECONNECT_JITTER of itself either way, so that peers that lost the server together
# do not all come back in the same instant.
RECONNECT_FIRST = 0.2 * SECONDS
RECONNECT_MAX = 10 * SECONDS
RECONNECT_JITTER = 0.1  # a fraction of each delay
# A running peer looks at its folder this often for RFC files added or removed (P2P-CI:
# ADD the new ones; P2P-DI: its local index). A look that finds the folder's modification
# time unchanged reads nothing more; a changed folder is listed once and only new files are
# read (their titles): docs/p2p-ci.md#folder-rescan.
FOLDER_RESCAN_INTERVAL = 2 * SECONDS
# A folder modified this recently is listed again even if its modification time did not
# move: a file added in the same clock tick as our last look would otherwise be missed.
FOLDER_SETTLE = 2 * SECONDS
# TCP keepalive on index-server connections: a vanished host is noticed after about
# KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT = 60 + 10 * 6 = 120 seconds.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 6

# --- concurrency -------------------------------------------------------------------------
# Simultaneous connections one server accepts; beyond it new connections are closed at once.
MAX_CONNECTIONS = 20_000
# Simultaneous connections one source address (IP) may hold at one server; beyond it its
# new connections are closed at once, so one host cannot take every slot. Generous for a
# classroom behind one NAT address; uploads and piece servers set tighter caps (below).
MAX_CONNECTIONS_PER_SOURCE = 4096
# The index server keeps the encoded answers to recent LOOKUPs, up to this many bytes in
# all (each dropped when a record of its RFC changes; all dropped when full), each at most
# LOOKUP_CACHE_MAX_ANSWER (an RFC with many holders is answered afresh): a LOOKUP in the
# common form is then one dictionary read (README, benchmark 2), and the cache can never
# become a second copy of a big index.
LOOKUP_CACHE_BYTES = 1 * MiB
LOOKUP_CACHE_MAX_ANSWER = 4 * KiB
# Simultaneous uploads one peer serves; beyond it a new connection is closed at once
# (a downloader then moves on to the next holder).
MAX_UPLOADS = 64
# Of those, how many one source address may hold at once: a quarter, so one host cannot
# hold every slot of an upload or piece server.
MAX_UPLOADS_PER_SOURCE = 16

# A file body goes out in runs of SENDFILE_RUN bytes, each due within WRITE_STALL_TIMEOUT:
# a receiver slower than 1 MiB per 30 s (about 35 KB/s) for a whole run is cut off, so
# clients that stop reading cannot hold upload slots for ever. Any other reply (an index,
# a PQuery list, a streamed LIST ALL) is cut off, and what was buffered for it dropped,
# when the receiver takes none of it for as long.
SENDFILE_RUN = 1 * MiB
WRITE_STALL_TIMEOUT = 30 * SECONDS
# A reply up to this size is written with one call (status line, data lines and final
# CRLF; a GET's headers with its file), so it leaves in one segment on loopback and most
# LANs: course clients that read a reply with a single recv() get all of it. 64 KiB is
# the largest one loopback segment carries and the default write-buffer high-water mark.
COALESCE_BYTES = 64 * KiB
# Pipelined requests a server answers on one connection before it lets the loop serve
# others: one read can carry thousands of small requests (asyncio reads up to 256 KiB at
# once), and answering them all in one go would stall every other client for that long.
REQUESTS_PER_TURN = 64

# --- index and tracker budgets (docs/p2p-ci.md#budgets, docs/swarm.md#tracker-budgets) ------
# What one connection, one source address (IP) and the whole index server may make the
# server hold. Over a budget a P2P-CI ADD gets 400 (P2P-CI has no better code) and a
# tracker ANNOUNCE 409 (this connection or address) or 503 (the server is full); the
# connection goes on, and everything it made is released when it ends.
# Records one P2P-CI connection may hold: the handout experiment's peers hold 60 RFCs and
# bench/index_scale.py's 1,400; ten thousand is a whole RFC collection.
MAX_RECORDS_PER_CONNECTION = 10_000
# Distinct host:port pairs one connection may claim (P2P-CI Host/Port, tracker addresses):
# a peer has one upload server; a few more allow a peer with several names or ports.
MAX_CLAIMS_PER_CONNECTION = 16
# Records all connections from one address may hold: a classroom behind one NAT address
# (a hundred peers with a thousand RFCs each), and a tenth of the whole index, so that one
# host cannot fill it (about 150 MiB of records at worst: long, distinct titles).
MAX_RECORDS_PER_SOURCE = 100_000
# Records in the whole index: twice benchmark 3's million (about 280 bytes a record with
# shared titles, measured by bench/index_scale.py: about 540 MiB when full).
MAX_INDEX_RECORDS = 2_000_000
# Tracker addresses (host:port claims) of all connections from one address, and in all.
MAX_TRACKER_CLAIMS_PER_SOURCE = 1024
MAX_TRACKER_CLAIMS = 65_536
# Manifest bytes the tracker holds (each swarm's manifest once, up to MAX_REQUEST_BODY):
# for the swarms one address's connections announce, and in all. A 1 GiB file's manifest
# is 275 KB, so an address may announce a hundred big files and the server holds a
# thousand.
MAX_MANIFEST_BYTES_PER_SOURCE = 32 * MiB
MAX_MANIFEST_BYTES = 256 * MiB
# Lines of one FILES answer (most recently announced first; the rest by ``Offset:``, or
# filtered by ``Name:``): at most 400 bytes a line, well under MAX_TRACKER_BODY.
MAX_FILES_LISTED = 1000

# --- bulk I/O ----------------------------------------------------------------------------
# Receive buffer for file bodies: large reads, written straight to disk.
RECV_CHUNK = 1 * MiB
# An RFC file a peer accepts (P2P-CI GET, P2P-DI GetRFC): the largest real RFC is a few
# MiB. A holder announcing more is refused before a byte is written, as is one announcing
# more than the download folder's free space less FREE_SPACE_MARGIN (room left for the
# rest of the system: a download must not be what fills the disk).
MAX_DOWNLOAD = 1 * GiB
FREE_SPACE_MARGIN = 1 * MiB
# Bytes of a file name in UTF-8 on common file systems (ext4, XFS, APFS, NTFS in UTF-16).
MAX_NAME_BYTES = 255
# Of those, what a name chosen by a sender may use (files.safe_name) when our temporary
# name decorates it (an RFC download's ``.<name>.<16 hex>.part``); a swarm's temporary names
# are made from the swarm id alone and keep no room (``swarm.tree``).
TEMP_NAME_ROOM = 32

# --- holders (docs/p2p-ci.md#a10) --------------------------------------------------------
# Several holders of one RFC are tried at once, Happy Eyeballs style (RFC 8305): the first
# at once, the next HOLDER_STAGGER later or as soon as one fails; the first whose reply
# head is valid wins and the others are cancelled. A holder that takes longer than
# HOLDER_CONNECT_TIMEOUT to accept, or HOLDER_FIRST_BYTE_TIMEOUT to start its reply, has
# failed: a loopback or LAN holder answers in milliseconds, and a record pointing at a
# black hole then costs seconds, not a RESPONSE_TIMEOUT each.
HOLDER_STAGGER = 1 * SECONDS
HOLDER_CONNECT_TIMEOUT = 3 * SECONDS
HOLDER_FIRST_BYTE_TIMEOUT = 5 * SECONDS

# --- P2P-DI (docs/p2p-di.md#handout-rules) ---------------------------------------------
# The registration server's well-known port (DI-573, Figure 1; DI-401 prints 65243:
# docs/p2p-ci.md#a13).
RS_PORT = 65423
# A peer's TTL at the RS and a remote RFC record's TTL at a peer: "initialized to a value of
# 7200 (in seconds) every time a peer contacts the RS".
DI_TTL = 7200 * SECONDS
# A registered peer sends KeepAlive after this share of its TTL has gone by: three chances
# to reach the RS before it is flagged inactive.
DI_KEEPALIVE_SHARE = 1 / 3
# "The number of times ... this peer has been active during the last 30 days".
DI_REGISTRATION_WINDOW = 30 * 24 * 3600 * SECONDS
# Registration times kept per peer for that count; beyond it the oldest are forgotten, so a
# peer re-registering in a loop cannot grow the RS's memory (the count then saturates).
DI_MAX_REGISTRATIONS_KEPT = 10_000
# Peer records the RS holds for one source address (IP): the handout's six peers on one
# machine, a thousand-peer test from one address, a classroom behind one NAT address. A
# source at its budget registering a new peer forgets its oldest inactive record, or is
# told 503 when all of its records are active: one host cannot fill the RS.
DI_MAX_PEERS_PER_SOURCE = 1024
# Peer records the RS holds in all, active or remembered (about 1 KiB each: 50 MiB); when
# full, the oldest inactive record is forgotten, or the newcomer is told 503.
DI_MAX_PEERS = 50_000
# An inactive peer's record is kept this long after the RS found it inactive (Leave, or its
# TTL ran out), so that it can come back with its cookie and its 30-day count; then it is
# forgotten, so the RS's memory does not grow with its history.
DI_FORGET_AFTER = 24 * 3600 * SECONDS
# Forgotten records deleted per RS request at most: purging is lazy and bounded (each
# request adds at most one record, so the purge keeps pace).
DI_PURGE_STEP = 64
# Active peers one PQuery reply lists at most (newest first); the ``Offset`` header pages
# through the rest. As many as one source may register, so one host's peers fit one page.
DI_MAX_PEERS_LISTED = 1024
# Largest ``Offset`` a PQuery may carry (a signed 32-bit integer).
DI_MAX_OFFSET = 2**31 - 1
# Body of a PQuery reply a client accepts: DI_MAX_PEERS_LISTED lines of the longest host name
# (255 characters, a port, CRLF: 263 bytes) fit in 270,000 bytes.
DI_MAX_PEER_LIST_BODY = 512 * KiB
# Body of an RFCQuery reply a client accepts; an RFC server sends no more (local records
# first, then remote ones while they fit). About 100,000 index lines of usual length.
DI_MAX_INDEX_BODY = 8 * MiB
# Remote records one peer's RFC index holds in all. Local records are apart and never
# evicted by remote ones. The experiment holds 60; a peer that knows every RFC of the
# series from ten holders holds 100,000.
DI_MAX_INDEX_RECORDS = 100_000
# Records one remote peer may bring into our index: lines read from one RFCQuery reply, and
# records held that it told us of. Every RFC published so far, twice over. When the index is
# full, a peer holding fewer records than the peer holding the most takes that one's oldest
# record's place (fair share): a peer cannot fill our index and keep others' records out.
DI_MAX_RECORDS_PER_PEER = 20_000
# Largest cookie accepted: fits a signed 64-bit integer, for peers written in other languages.
DI_MAX_COOKIE = 2**63 - 1
# Largest TTL a reply may state (an RS may be configured with a TTL other than DI_TTL).
DI_MAX_TTL = 30 * 24 * 3600

# --- swarm (docs/swarm.md) ---------------------------------------------------------------
# Default piece size. 256 KiB crosses a 100 Mbit/s uplink in 21 ms, so a leech passes on
# what it received almost at once (each hop of a swarm is store-and-forward of one piece),
# while per-piece costs (a request, a hash check, a picker decision) stay a small share.
SWARM_PIECE_SIZE = 256 * KiB
# Bigger files get bigger pieces, doubling until they have at most this many: keeps the
# manifest (about 67 bytes per piece) and PEERS bitfields small, and the picker fast.
SWARM_TARGET_PIECES = 4096
MIN_PIECE_SIZE = 16 * KiB
# A piece is held in memory while it is checked, so this bounds memory per request.
MAX_PIECE_SIZE = 16 * MiB
# Pieces of one file: 15,000 hex digests of 67 bytes fit a manifest in MAX_REQUEST_BODY.
MAX_PIECES = 15_000
# Bytes of a shared file's name in UTF-8 (the usual file-system limit).
MAX_SWARM_NAME = 255
# A shared folder (a collection, docs/swarm.md#collections), checked by anyone who receives
# its manifest: files listed (each non-empty one costs at least a piece, so MAX_PIECES
# bounds them too), folders deep, and bytes of one relative path in UTF-8 (with the
# download folder's own path it must fit the system's PATH_MAX, 4,096 bytes).
MAX_COLLECTION_FILES = 10_000
MAX_PATH_DEPTH = 32
MAX_PATH_BYTES = 1024
# Swarms one tracker connection may announce; each holds a manifest of up to 1 MiB.
MAX_SWARMS_PER_PEER = 1024
# Peers listed in one PEERS answer (a random sample when there are more).
MAX_PEERS_LISTED = 64
# A tracker answer a client accepts: PEERS with MAX_PEERS_LISTED bitfields of MAX_PIECES.
MAX_TRACKER_BODY = 4 * MiB
# Peers one download is connected to at once.
MAX_PEER_CONNECTIONS = 32
# Connections one piece server serves at once; the next gets 503 and is closed.
SWARM_MAX_UPLOADS = 64
# A piece server with an upload rate limit sends a piece in runs of this many bytes, each
# when the limit allows, so that downloaders see steady progress, not a pause then a burst.
THROTTLE_RUN = 16 * KiB
# A rate limiter (uploads, or downloads with --max-download-rate) grants this many seconds
# of its rate at a time (at least THROTTLE_RUN, at most RECV_CHUNK): the connections that
# share it interleave finely, and 50 ms is far under any deadline a downloader judges by.
RATE_RUN_SECONDS = 0.05 * SECONDS
# A piece server checks that a file it shares whole is unchanged on disk (os.stat: size,
# mtime, inode) at most this often, before serving a piece of it: a changed file is
# withdrawn, at most this long after the change, instead of sending pieces that fail.
SEED_STAT_INTERVAL = 1 * SECONDS
# Seconds a peer told 503 waits before asking that piece server again.
BUSY_RETRY_AFTER = 2 * SECONDS
# A piece-server connection that sends no request for this long is closed.
SWARM_IDLE_TIMEOUT = 60 * SECONDS
# Pipelining: requests in flight on one peer connection cover this many seconds of that
# peer's measured rate, so the link never idles between pieces; at least MIN_PIPELINE
# (one arriving while the next is asked for) and at most MAX_PIPELINE. Short queues keep
# few pieces committed to one peer, so others learn soon which pieces are taken.
PIPELINE_SECONDS = 0.5 * SECONDS
MIN_PIPELINE = 2
MAX_PIPELINE = 16
# A request at the head of a peer's queue for longer than PIECE_DEADLINE_FACTOR times the
# time the swarm's median link needs for it (and at least PIECE_DEADLINE_MIN) is also asked
# of another peer, and the slow peer gets no new request until it delivers.
PIECE_DEADLINE_MIN = 2 * SECONDS
PIECE_DEADLINE_FACTOR = 4
# Rate assumed for a link before any piece has arrived on it (bytes per second).
ASSUMED_RATE = 256 * KiB
# Piece links wake the downloader only once this much of a body has arrived (SO_RCVLOWAT),
# never more than the body still lacks nor more than LOWAT_SECONDS of the link's measured
# rate (a slow peer still shows progress well within LINK_JUDGE_AFTER): a 100 Mbit/s
# link delivering 1-3 KiB per wakeup made a Python reader spend most of its CPU waking.
MAX_RCVLOWAT = 256 * KiB
LOWAT_SECONDS = 0.05 * SECONDS
# A peer whose connection failed or was dropped is tried again after this long.
PEER_RETRY_DELAY = 2 * SECONDS
# Sybil members (fake peers that accept a connection and trickle a byte now and then) must
# not hold a download's link slots (swarm/roster.py). A link's progress on its oldest
# request is judged LINK_JUDGE_AFTER seconds after that request began to be served, and
# again every as long: below MIN_LINK_RATE (64 kbit/s; under our own download limit at
# most half of what it leaves the link) the link is dropped, and below 1/SLOW_LINK_FRACTION
# of the median rate of the links that delivered good pieces too while a peer waits for
# the slot its drop would free (roster.judge). Half a second leaves an honest peer
# time for a round trip and the first TCP window (a peer that delivered before is judged
# from its piece deadline instead).
LINK_JUDGE_AFTER = 0.5 * SECONDS
SLOW_LINK_FRACTION = 8
MIN_LINK_RATE = 8 * KiB
# Links open at once to peers that have not yet delivered a good piece to this download:
# the other slots stay free for peers that did. With LINK_JUDGE_AFTER, a victim among 32
# tricklers each on its own host finds an honest peer within 4 rounds (2 s).
MAX_UNTESTED_LINKS = 8
# A peer dropped for slowness is tried again after PEER_RETRY_DELAY, doubling with each
# such drop, at most this long.
SLOW_PEER_MAX_DELAY = 300 * SECONDS
# Pieces failing their SHA-256, or 404s for pieces it claimed, a peer may send before it is
# dropped for this download.
MAX_BAD_PIECES = 2
# A downloader asks a seeder only for first copies, of its own stripe while others' remain
# (swarm/picker.py), and leaves a seeder to the leader; one that got no new good piece for
# this long is starved, and asks anyway for as long, so that a slow or stuck peer does not
# hold it back for long.
RESERVE_PATIENCE = 2 * SECONDS
# A listed downloader whose pieces did not grow for this long (by the tracker's lists and
# its Have news) fetches nothing of its stripe: gone, a Sybil that only announces, or done
# with the files it wants; nor does, for us, one that claims pieces we lack, never gave us
# one, and that we hold no link to (unreachable, banned). Its stripe is shared by the
# others as their own (swarm/fetch.py, picker.py).
STRIPE_IDLE = 1 * SECONDS
# A downloader whose stripe's first copies are all asked for takes others' (its backup
# share, swarm/pieces.py ``backup``) from the end of their owners' order, but never the
# first SPARE_MARGIN of one stripe plus what its owner gains of it in SPARE_SECONDS at its
# pace (measured over the last SPARE_PACE_WINDOW, swarm/fetch.py ``pace``): its owner,
# which asks for them in that order, is fetching those now, or will have asked for them
# before we hear of it. So an owner whose link to the seeder or uplink is slower than the
# others' is relieved of its stripe's last pieces, and the seeder sends each piece about
# once. Neither part is exact: the owner's pipeline to the seeder holds PIPELINE_SECONDS
# of pieces at its link's measured rate (at least MIN_PIPELINE), and news of what it got
# takes up to a PEERS poll and a HAVE report to reach us; an owner fast enough that its
# pipeline and news outrun the margin may be asked for a piece it already has in flight,
# a second copy from the seed. SPARE_SECONDS was 1 s, twice the pipeline, and a helper
# then relieved an owner of next to nothing in the last second; 0.5 s took 0.15-0.22 s
# off N = 8 and 0.19 s off N = 4 on the shaped benchmark, seed copies from 1.07-1.08 to
# 1.07-1.085 in the medians (up to 1.11 at N = 4; bench/README.md, thirteenth round).
SPARE_MARGIN = 4
SPARE_SECONDS = 0.5 * SECONDS
SPARE_PACE_WINDOW = 1 * SECONDS
# While the network limits a seeder's upload (Uplink: full), its answers name the pieces it
# began sending to other connections (the Sent header, swarm/seeder.py) within SENT_SECONDS,
# and a downloader does not ask that seeder for those as first copies for as long after it
# hears of them (swarm/picker.py, rule 1): they reach it from the downloader they went to,
# which has them within a second in the shaped benchmark. A piece is named for at most
# SENT_SECONDS after it was first asked for (asking again does not renew it), a connection
# has at most MAX_SENT_PER_CONNECTION pieces named at once, and a closed one's are no longer
# named: a downloader that asks and never reads keeps those few from others for at most
# twice SENT_SECONDS a request (named up to SENT_SECONDS after, believed as long), and a
# downloader held back still asks any seeder for anything once starved (RESERVE_PATIENCE).
# A seeder holds at most twice MAX_SENT_LOG entries per swarm and trims to MAX_SENT_LOG
# (SWARM_MAX_UPLOADS connections at MAX_SENT_PER_CONNECTION make MAX_SENT_LOG in one
# window; entries live up to two, and a freed slot brings a fresh budget).
SENT_SECONDS = 2 * SECONDS
MAX_SENT_PER_CONNECTION = 16
MAX_SENT_LOG = 1024
# The leader (swarm/picker.py, rule 4) is the first downloader in address order holding
# no fewer than this fraction of the pieces less than the most any downloader holds: all
# downloaders name the same one, it stays the leader while the others keep pace, and a
# newcomer with little leads only once it has caught up.
LEADER_MARGIN = 1 / 8
# Unless the network is what limits a seeder's upload (swarm/seeder.py): a seeder judges a
# connection once it has had bytes to send for UPLINK_JUDGED_AFTER; if under this share of
# that time went waiting on the receiver's window, the receiver is not what holds the
# upload back, and the seeder's answers say ``Uplink: full``. Downloaders that hear it (or
# hear it relayed) each ask seeders for their own stripe instead of leaving them to the
# leader: a single flow to a leader whose own uplink is full carries less than the link.
UPLINK_JUDGED_AFTER = 0.3 * SECONDS
UPLINK_RECEIVER_SHARE = 0.2
# Endgame: when every missing piece is requested, one piece may be asked of this many
# peers at once; the first good copy wins.
ENDGAME_MAX_REQUESTS = 2
# How often a download asks the tracker who holds what.
PEERS_POLL_INTERVAL = 0.25 * SECONDS
# Least time between a download's HAVE reports: the pieces verified meanwhile go in one.
# Other peers hear of them at their next PEERS poll (or sooner, with our piece answers),
# so reporting more often than a poll tells no one sooner; on a fast link it was one
# tracker round trip per piece.
HAVE_REPORT_INTERVAL = 0.1 * SECONDS
# Characters of one Have header (new pieces told with a PIECE answer); more go in later
# answers. Well under MAX_LINE.
MAX_HAVE_HEADER = 4 * KiB
# How often the resume manifest of verified pieces is rewritten during a download.
RESUME_SAVE_INTERVAL = 1 * SECONDS
# Plain progress lines (stdout not a terminal) are printed this often.
PROGRESS_LOG_INTERVAL = 1 * SECONDS

# --- BitTorrent (docs/bittorrent.md) ------------------------------------------------------
# Nesting of lists and dictionaries in one bencoded value. A v2 torrent's file tree nests
# one dictionary per folder level; libtorrent's reader allows 100 levels, and so do we.
MAX_BENCODE_DEPTH = 100
# A bencoded message from the network (tracker answer, extension handshake, one metadata
# piece's header): 4 MiB is libtorrent's default bound on a torrent's metadata too.
MAX_BENCODE_SIZE = 4 * MiB
# Values (integers, strings, lists, dictionaries) in one tracker answer: a 200-peer answer
# in dictionary form holds about 800; 4 MiB of "le" would be two million empty lists (over
# 100 MiB of Python objects), refused as soon as the count is passed.
MAX_TRACKER_ANSWER_VALUES = 20_000
# A .torrent file read from disk or given on the command line (its info dictionary, piece
# layers and tracker lists together): libtorrent's default bound is 10 MB; a v2 torrent of
# a terabyte at 4 MiB pieces carries 8 MB of piece layers, so 16 MiB leaves room for it.
MAX_TORRENT_FILE = 16 * MiB
# Pieces of one torrent (v1 hashes, or v2 pieces over all files): libtorrent's default
# ``max_pieces`` (2**21), 40 MiB of SHA-1s; a reader holds a bitfield and a hash per piece.
MAX_TORRENT_PIECES = 2**21
# Files in one torrent, pad files included: each costs a file table entry and maybe an
# open file; 4 MiB of info dictionary holds about 100,000 short entries anyway.
MAX_TORRENT_FILES = 100_000
# Largest piece length accepted or made: libtorrent refuses to create pieces over 128 MiB
# ("some clients don't support pieces this large"). The smallest is a v2 block, 16 KiB.
MAX_PIECE_LENGTH = 128 * MiB
MIN_PIECE_LENGTH = 16 * KiB
# Bytes of one file of a torrent: libtorrent's own bound (2**62), so offsets fit 64 bits.
MAX_TORRENT_FILE_LENGTH = 2**62
# Tracker URLs of one torrent or magnet link (all tiers), and characters of one URL.
MAX_TORRENT_TRACKERS = 256
MAX_TRACKER_URL = 2 * KiB
# Characters of a magnet link; peers (x.pe) listed in one.
MAX_MAGNET = 64 * KiB
MAX_MAGNET_PEERS = 256

# --- BitTorrent sessions: seed and fetch (docs/bittorrent.md#sessions) --------------------
# A peer must send its handshake this long after connecting (either way), and a connection
# to a peer must be made and greeted in as long; a greeted connection silent for
# BT_IDLE_TIMEOUT is closed (BEP 3 peers send a keep-alive every 2 minutes).
BT_HANDSHAKE_TIMEOUT = 10 * SECONDS
BT_IDLE_TIMEOUT = 180 * SECONDS
# A link of ours that has sent nothing for this long sends a keep-alive (BEP 3 suggests
# two minutes; peers close a link silent for longer).
BT_KEEPALIVE_INTERVAL = 90 * SECONDS
# A peer that sends none of the blocks we asked for (or keeps us choked) this long loses
# its link, and its pieces go to others; a peer we unchoked that asks for nothing this long
# gives its upload slot to a waiting peer.
BT_SNUB_TIMEOUT = 20 * SECONDS
# Block requests (16 KiB each) in flight on one link: 64 blocks, 1 MiB, keep a 100 Mbit/s
# link with an 80 ms round trip busy; libtorrent's peers accept 250-500 (``reqq``).
BT_PIPELINE = 64
# Bytes of pieces one link assembles in memory at once (at least one piece, whatever its
# size): bounds a download's memory to this times its links.
BT_MAX_ASSEMBLY = 8 * MiB
# Peer addresses one download remembers (from --peer, trackers and PEX): a tracker or a
# PEX message cannot grow the table past it.
BT_MAX_KNOWN_PEERS = 2000
# Addresses one connected peer may tell a download of by ut_pex, in all: BEP 11 peers send
# at most 50 a minute, so 200 is a few minutes' worth; one peer cannot fill the table.
BT_PEX_PER_PEER = 200
# Connections a seed accepts in all and from one address (who is unchoked among them is
# the choker's: BT_UPLOAD_SLOTS).
BT_MAX_CONNECTIONS = 256
BT_MAX_CONNECTIONS_PER_SOURCE = 8
# A magnet's metadata (BEP 9) from one peer, all of it, in this long.
BT_METADATA_TIMEOUT = 30 * SECONDS
# Rounds over the known peers asking for a magnet's metadata, PEER_RETRY_DELAY apart.
BT_METADATA_ROUNDS = 3
# Announces: the whole of one (retries included), the ``stopped`` one on the way out, the
# peers asked for, the interval when a tracker names none, and the least we accept.
BT_ANNOUNCE_TIMEOUT = 15 * SECONDS
BT_STOP_TIMEOUT = 2 * SECONDS
BT_NUMWANT = 50
BT_DEFAULT_ANNOUNCE_INTERVAL = 1800 * SECONDS
BT_MIN_ANNOUNCE_INTERVAL = 10 * SECONDS

# --- BitTorrent peer wire (docs/bittorrent.md#wire-limits) ------------------------------
# A block: the unit of a request and a piece message. BEP 3 clients all request 16 KiB and
# close connections that ask for more (libtorrent, Transmission); so do we.
BT_BLOCK = 16 * KiB
# The longest ordinary message after its 4-byte length: a piece message (id, index, begin)
# carrying one block. Every id without its own bound below is held to this.
MAX_BT_MESSAGE = BT_BLOCK + 9
# Pieces of one torrent: a bitfield of 2**22 pieces is 512 KiB, the only message that may
# pass MAX_BT_MESSAGE; with a known torrent it must be exactly ceil(pieces / 8) bytes.
MAX_BT_PIECES = 2**22
# An extension message (BEP 10): its bencoded dictionary plus, for ut_metadata data, one
# 16 KiB metadata piece. Handshakes of real clients are well under 1 KiB.
MAX_BT_EXTENDED = BT_BLOCK + 1 * KiB
# Hashes in one BEP 52 hash request we answer or take (libtorrent's bound on a request,
# not on a file): the hashes message answering it carries them and at most
# MAX_BT_PROOF_LAYERS uncle hashes, 32 bytes each.
MAX_BT_HASH_COUNT = 8192
# Piece hashes we ask in one hash request: a file's piece layer is asked in chunks of
# this many (libtorrent asks so, and takes no longer answer at the piece layer), each
# proven against the file's root; at most BT_HASH_REQUESTS of them in flight per link.
BT_HASH_CHUNK = 512
BT_HASH_REQUESTS = 4
MAX_BT_PROOF_LAYERS = 64
MAX_BT_HASHES_MESSAGE = 49 + 32 * (MAX_BT_HASH_COUNT + MAX_BT_PROOF_LAYERS)
# Requests a peer may have outstanding with us: the ``reqq`` we advertise in our extension
# handshake (libtorrent's default is 500; 250 keeps a fast link busy at 16 KiB each). A
# peer over it is sent a reject (fast extension) or disconnected.
BT_REQQ = 250
# A peer that has asked us for piece layers (BEP 52) and asks for blocks of pieces whose
# layer hashes it has not been sent: those blocks wait up to this long (from the first held
# block of their file) for it to ask, so that the layer reaches it first (bt.seeder); the
# held blocks count against its BT_REQQ; a peer that never asks for a layer never waits.
BT_LAYER_WAIT = 0.25 * SECONDS
# Requests we assume a peer accepts when its handshake gives no ``reqq`` (BEP 10's text
# says libtorrent's default was 250 when it was written).
BT_DEFAULT_PEER_REQQ = 250
# Peers in one ut_pex message (BEP 11 convention between uTorrent and Azureus): at most 50
# added and 50 dropped, IPv4 and IPv6 together. More than that is ignored, not an error.
MAX_PEX_PEERS = 50
# Allowed-fast pieces (BEP 6): we grant this many, and remember at most MAX_BT_ALLOWED_FAST
# a peer grants us (a peer cannot grow our table past it).
BT_ALLOWED_FAST = 10
MAX_BT_ALLOWED_FAST = 64
# Blocks we cancelled whose piece message may still be on its way: a piece for one of
# them is dropped quietly; a piece for a block never requested ends the connection.
MAX_BT_CANCELLED = 512
# A metadata piece (BEP 9) and the most metadata we accept: one metadata piece is 16 KiB,
# the whole at most MAX_BENCODE_SIZE (libtorrent's default bound as well).
BT_METADATA_PIECE = 16 * KiB
# The choker (BEP 3's tit-for-tat, as mainline BitTorrent): who gets our upload slots is
# decided every BT_RECHOKE_INTERVAL from the rates of the last interval; one slot is the
# optimistic unchoke, moved every BT_OPTIMISTIC_INTERVAL; a peer that sent us no block
# for BT_SNUB_TIME while we wanted its pieces is snubbed (only optimistic slots for it).
BT_UPLOAD_SLOTS = 4
BT_RECHOKE_INTERVAL = 10 * SECONDS
BT_OPTIMISTIC_INTERVAL = 30 * SECONDS
BT_SNUB_TIME = 60 * SECONDS

# --- BitTorrent tracker (docs/bittorrent.md#tracker) ---------------------------------------
# opentracker's timing: peers are told to announce every TRACKER_INTERVAL, spread by up to
# TRACKER_INTERVAL_SPREAD either way so that a swarm started together does not come back
# together, and not more often than TRACKER_MIN_INTERVAL (half of it). A peer not heard
# from for TRACKER_PEER_TIMEOUT (one and a half intervals: one missed announce) is dropped.
TRACKER_INTERVAL = 1800 * SECONDS
TRACKER_INTERVAL_SPREAD = 180 * SECONDS
TRACKER_MIN_INTERVAL = 900 * SECONDS
TRACKER_PEER_TIMEOUT = 2700 * SECONDS
# Peers one announce answer lists when the client does not say (numwant), and at most:
# opentracker's 50 and 200. 200 IPv6 peers are 3,600 bytes: one UDP answer fits a
# 1,500-byte-MTU path's reassembly easily and stays under MAX_UDP_DATAGRAM.
TRACKER_NUMWANT_DEFAULT = 50
TRACKER_NUMWANT_MAX = 200
# Info-hashes one scrape may name (HTTP and UDP): BEP 15's 74 fill a 1,500-byte UDP
# answer (74 * 12 + 8 bytes) and a 1,500-byte request.
MAX_SCRAPE_HASHES = 74
# Bytes of an announce's ``key`` and ``ip`` values (kept only to be logged; an address
# is 45 characters at most, a key is 8 hex digits in every client we know).
MAX_TRACKER_KEY = 64
MAX_TRACKER_IP = 255
# The table's budgets: swarms, peers in one swarm, peers in all, and peer records one
# source address holds (over all swarms: a classroom behind one NAT address seeding a
# few torrents each). A source at its budget announcing a new record loses its own
# least recently seen record; a full swarm or table refuses newcomers, never evicts
# another source's peers. A record costs about 1 KB when each comes from its own address
# (the worst case: its address's own bookkeeping; bench/bt_tracker.py), so a full table is
# about 250 MiB.
TRACKER_MAX_SWARMS = 100_000
TRACKER_MAX_SWARM_PEERS = 50_000
TRACKER_MAX_PEERS = 250_000
TRACKER_PEERS_PER_SOURCE = 1024
# Announces (HTTP and UDP alike) one source address may make: a burst of
# TRACKER_ANNOUNCE_BURST (a client starting with a hundred torrents announces them all
# at once), then TRACKER_ANNOUNCE_RATE a second; scrapes as many again, counted apart (a
# monitor polling scrapes must not starve its host's announces). Over it, a failure reason.
TRACKER_ANNOUNCE_BURST = 200
TRACKER_ANNOUNCE_RATE = 10.0
# Source addresses whose rate is remembered; the least recently heard is forgotten first
# (an address forgotten starts again with a full burst: bounded memory, not fairness).
MAX_RATE_SOURCES = 65_536
# UDP (BEP 15): a datagram longer than this is dropped unread (the longest request, a
# scrape of MAX_SCRAPE_HASHES, is 1,496 bytes; opentracker reads 8 KiB).
MAX_UDP_DATAGRAM = 8 * KiB
# Datagrams one source address may send the UDP tracker (connects too, which cost a hash):
# a burst, then a rate a second; the rest is dropped unanswered.
UDP_DATAGRAM_BURST = 400
UDP_DATAGRAM_RATE = 40.0
# A connection id names its source address and a time slot of this length; ids of the
# current and the previous slot are accepted, so an id lives one to two slots (BEP 15: a
# client uses it for one minute, a server accepts it for two).
UDP_CONNECTION_ID_SLOT = 60 * SECONDS
# Client retries (BEP 15): wait 15 * 2**n seconds for the n-th answer, n up to 8, but
# never past the caller's deadline.
UDP_RETRY_BASE = 15 * SECONDS
UDP_MAX_RETRIES = 8
# A UDP tracker's connection id is reused this long (BEP 15: a client may use one for a
# minute), for this many trackers at most (the least recently connected forgotten first).
UDP_CONNECTION_ID_REUSE = 60 * SECONDS
UDP_CLIENT_IDS = 256
# Datagrams a UDP client holds unread (it waits for one answer at a time; more are late
# answers to earlier tries, or noise).
UDP_CLIENT_QUEUE = 16
# How often the tracker drops the stale peers of swarms nobody announces to (those of a
# swarm announced to are dropped then): a tenth of the peer timeout is soon enough.
TRACKER_SWEEP_INTERVAL = 60 * SECONDS

# --- the P2P-DI experiment (``p2pshare experiment``) -----------------------------------
# One step of a run (a process starting, the index queries, one peer's whole download
# loop) may take this long before the run is abandoned: generous for 50 loopback downloads
# on a slow, busy machine; a hung worker still cannot stall the command for ever.
EXPERIMENT_STEP_TIMEOUT = 300 * SECONDS

# --- HTTP (protocol.http, web/: the dashboard, metrics and the BitTorrent tracker) ------
# A request target (path and query) in bytes, percent-escapes included: a BitTorrent
# announce with a 20-byte info_hash and peer_id escaped (60 bytes each) and its other
# fields is under 600 bytes; browsers and scrapers send far less. Longer is a 414.
MAX_HTTP_TARGET = 4 * KiB
# Fields in one query string (``a=1&b=2``): an announce has about a dozen, a scrape one
# per info_hash asked about.
MAX_QUERY_FIELDS = 128
# A request body: none of our routes reads one (GET and HEAD only); a small body is read
# and dropped so that the connection stays in step, a bigger one is a 413 and a close.
MAX_HTTP_BODY = 16 * KiB
# Connections one HTTP server holds in all and per source address: browsers open about
# six per page, scrapers one, BitTorrent clients one per announce.
HTTP_MAX_CONNECTIONS = 4096
HTTP_MAX_PER_SOURCE = 64
# A keep-alive HTTP connection resting this long between requests is closed (browsers
# keep idle connections for about a minute, and reopen one when they need it).
HTTP_IDLE_TIMEOUT = 30 * SECONDS
# Rows of each table /api/state gives (peers, RFCs, swarms), newest
# first: what a page can show, and a reading that costs the server O(rows) however big
# the index is. The totals are given apart.
DASHBOARD_ROWS = 200
# Members each swarm's row lists (of its DASHBOARD_ROWS at most): a reading costs rows of
# swarms times members each, and a glance at a swarm needs a few of its members.
DASHBOARD_MEMBERS = 16
# A swarm's piece availability is shown in at most this many runs of pieces (the fewest
# holders of any piece in each): one strip in the page, whatever the piece count.
AVAILABILITY_BUCKETS = 128
