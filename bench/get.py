"""Benchmark 1: one GET of a large file over loopback, written to a file on disk.

Compares, in one run and on the same file:
  * raw: a plain ``socket.sendfile`` sender and a ``recv_into`` receiver writing the file
    (no protocol: the ceiling for Python on this machine);
  * nginx (sendfile on) serving the file to curl, when nginx is installed;
  * p2pshare: a real ``p2pshare peer`` process serving ``GET RFC 1``, fetched with the
    library's downloader (temporary file, Content-Length check, fsync, rename).

The methods take turns, run after run, and every run starts after ``sync`` with its
output file removed, so none pays for the writeback of another's files.

Usage: python bench/get.py [--size-mib 1024] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MB,
    child,
    console,
    free_port,
    machine,
    make_file,
    p2pshare_cmd,
    result_table,
    timed,
    wait_port,
)

RAW_BUFFER = 4 * 1024 * 1024


def raw_once(src: Path, dst: Path) -> float:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def send() -> None:
        conn, _ = server.accept()
        with conn, open(src, "rb") as f:
            conn.sendfile(f)

    sender = threading.Thread(target=send)
    sender.start()

    def receive() -> None:
        buf = bytearray(RAW_BUFFER)
        view = memoryview(buf)
        with socket.create_connection(("127.0.0.1", port)) as s, open(dst, "wb") as out:
            while n := s.recv_into(buf):
                out.write(view[:n])

    seconds = timed(receive)
    sender.join()
    server.close()
    return seconds


NGINX_CONF = """
worker_processes 1; daemon off; error_log {tmp}/error.log; pid {tmp}/nginx.pid;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
"""


def settle(dst: Path) -> None:
    """The same start for every timed run: no earlier output, no dirty pages.

    Without this the method measured last pays for the writeback of every file the others
    left in the page cache (6 GiB after three raw and three nginx runs of 1 GiB): the fsync
    p2pshare does before its rename then waits behind them.
    """
    dst.unlink(missing_ok=True)
    os.sync()


@contextlib.contextmanager
def nginx_server(root: Path, tmp: Path) -> Iterator[Callable[[Path], float] | None]:
    """Yields a measure (curl fetching rfc1.txt into ``dst``), or None without nginx/curl."""
    nginx, curl = shutil.which("nginx") or "/usr/sbin/nginx", shutil.which("curl")
    if not os.path.exists(nginx) or curl is None:
        yield None
        return
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
    url = f"http://127.0.0.1:{port}/rfc1.txt"
    with child([nginx, "-c", str(conf), "-p", str(tmp)]):
        wait_port(port)
        yield lambda dst: timed(lambda: subprocess.run([curl, "-s", "-o", str(dst), url],
                                                       check=True))


@contextlib.contextmanager
def p2pshare_peer(root: Path) -> Iterator[Callable[[Path], float]]:
    """Yields a measure: the library's downloader fetching RFC 1 into ``dst``'s folder."""
    from p2pshare.peer.client import fetch_from

    index_port, upload_port = free_port(), free_port()
    with child(p2pshare_cmd("server", "--listen", "127.0.0.1", "--port", str(index_port))):
        wait_port(index_port)
        with child(p2pshare_cmd("peer", "--server", f"127.0.0.1:{index_port}", "--dir",
                                str(root), "--upload-port", str(upload_port), "--hostname",
                                "127.0.0.1", "--no-menu")):
            wait_port(upload_port)
            yield lambda dst: timed(lambda: asyncio.run(
                fetch_from(dst.parent, 1, "127.0.0.1", upload_port)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="p2pshare-bench-", dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        root, out = tmp / "src", tmp / "out"
        root.mkdir()
        out.mkdir()
        src = make_file(root / "rfc1.txt", size)
        console.print(f"[bold]GET benchmark[/]: {args.size_mib} MiB, median of {args.runs}, "
                      f"methods in turn, each run after sync, {machine()}")
        with nginx_server(root, tmp) as ngx, p2pshare_peer(root) as ours:
            methods: dict[str, tuple[Callable[[Path], float], Path]] = {
                "raw": (lambda dst: raw_once(src, dst), out / "raw")}
            if ngx is not None:
                methods["nginx"] = (ngx, out / "nginx")
            methods["p2pshare"] = (ours, out / "rfc1.txt")
            times: dict[str, list[float]] = {name: [] for name in methods}
            for _ in range(args.runs):
                for name, (measure, dst) in methods.items():
                    settle(dst)
                    times[name].append(measure(dst))
        if (out / "rfc1.txt").read_bytes()[:1 << 20] != src.read_bytes()[:1 << 20]:
            raise SystemExit("p2pshare's copy differs from the source")
        raw, ours_s = statistics.median(times["raw"]), statistics.median(times["p2pshare"])
        rows = [["raw sendfile -> recv_into (reference)", size / raw / MB, 1.0]]
        if "nginx" in times:
            ngx_s = statistics.median(times["nginx"])
            rows.append(["nginx + curl", size / ngx_s / MB, raw / ngx_s])
        rows.append(["p2pshare GET (with fsync)", size / ours_s / MB, raw / ours_s])
        result_table("one GET over loopback, to a file (MB/s; ratio to raw)",
                     ["method", "MB/s", "x raw"], rows)
        if "nginx" in times:
            console.print(f"p2pshare / nginx+curl: {ngx_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
