"""Benchmark 1: one GET of a large file over loopback, written to a file on disk.

Compares, in one run and on the same file:
  * raw: a plain ``socket.sendfile`` sender and a ``recv_into`` receiver writing the file
    (no protocol: the ceiling for Python on this machine);
  * nginx (sendfile on) serving the file to curl, when nginx is installed;
  * p2pshare: a real ``p2pshare peer`` process serving ``GET RFC 1``, fetched with the
    library's downloader (temporary file, Content-Length check, fsync, rename).

Usage: python bench/get.py [--size-mib 1024] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MB,
    child,
    console,
    free_port,
    machine,
    make_file,
    median_of,
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


def nginx_runs(root: Path, dst: Path, runs: int, tmp: Path) -> float | None:
    nginx, curl = shutil.which("nginx") or "/usr/sbin/nginx", shutil.which("curl")
    if not os.path.exists(nginx) or curl is None:
        return None
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
    with child([nginx, "-c", str(conf), "-p", str(tmp)]):
        wait_port(port)
        url = f"http://127.0.0.1:{port}/rfc1.txt"
        import subprocess

        return median_of(runs, lambda: timed(lambda: subprocess.run(
            [curl, "-s", "-o", str(dst), url], check=True)))[0]


def p2pshare_runs(root: Path, out: Path, runs: int) -> float:
    from p2pshare.peer.client import fetch_from

    index_port, upload_port = free_port(), free_port()
    with child(p2pshare_cmd("server", "--host", "127.0.0.1", "--port", str(index_port))):
        wait_port(index_port)
        with child(p2pshare_cmd("peer", "--server", f"127.0.0.1:{index_port}", "--dir",
                                str(root), "--upload-port", str(upload_port), "--hostname",
                                "127.0.0.1", "--no-menu")):
            wait_port(upload_port)

            def once() -> float:
                return timed(lambda: asyncio.run(fetch_from(out, 1, "127.0.0.1", upload_port)))
            return median_of(runs, once)[0]


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
                      f"{machine()}")
        raw = median_of(args.runs, lambda: raw_once(src, out / "raw"))[0]
        ngx = nginx_runs(root, out / "nginx", args.runs, tmp)
        ours = p2pshare_runs(root, out, args.runs)
        if (out / "rfc1.txt").read_bytes()[:1 << 20] != src.read_bytes()[:1 << 20]:
            raise SystemExit("p2pshare's copy differs from the source")
        rows = [["raw sendfile -> recv_into (reference)", size / raw / MB, 1.0]]
        if ngx is not None:
            rows.append(["nginx + curl", size / ngx / MB, raw / ngx])
        rows.append(["p2pshare GET", size / ours / MB, raw / ours])
        result_table("one GET over loopback, to a file (MB/s; ratio to raw)",
                     ["method", "MB/s", "x raw"], rows)
        if ngx is not None:
            console.print(f"p2pshare / nginx+curl: {ngx / ours:.2f}x")


if __name__ == "__main__":
    main()
