"""The command line's shared behaviour, as a user meets it: real ``python -m p2pshare``
processes (docs/cli.md): exit codes, signals, -v/-q anywhere, stdout for results and
stderr for the rest, NDJSON events, --timeout, no tracebacks, a closed stdout."""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ..aio import HOST
from ..helpers import DEADLINE, cli_env, read_rest, read_until, run_cli, spawn_cli
from ..swarm.procs import LOCAL, seeder, server

SIGNALS = [signal.SIGINT, signal.SIGTERM]


@contextmanager
def silent_server() -> Iterator[tuple[str, socket.socket]]:
    """A TCP server that accepts and never answers: a client of it waits. Yields its
    ``HOST:PORT`` and the listening socket (``accept`` tells when a client came)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen(8)
        sock.settimeout(DEADLINE)
        yield f"{HOST}:{sock.getsockname()[1]}", sock


@contextmanager
def child(args: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    proc = spawn_cli(args, stderr=subprocess.PIPE, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=DEADLINE)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def one_line(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    """``done`` exited ``status`` with one line on stderr naming ``words``, no traceback."""
    lines = done.stderr.splitlines()
    assert done.returncode == status, done.stderr
    assert len(lines) == 1 and lines[0].startswith("p2pshare: "), done.stderr
    assert all(w in lines[0] for w in words), done.stderr


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 1024)  # 256 KiB
    return path


# ------------------------------------------------------------------------ signals
@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("command", ["get", "fetch"])
def test_a_signal_ends_a_waiting_job_with_130(command: str, sig: int, tmp_path: Path) -> None:
    args = {"get": ["get", "1", "--out", str(tmp_path)],
            "fetch": ["fetch", "x.bin", "--out", str(tmp_path), *LOCAL]}[command]
    with silent_server() as (address, sock), child([*args, "--server", address]) as proc:
        link, _ = sock.accept()  # the child is connected, waiting for an answer
        with link:
            proc.send_signal(sig)
            assert proc.wait(timeout=DEADLINE) == 130
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def test_fetch_seed_once_complete_ends_with_0_and_a_summary(data: Path, tmp_path: Path) -> None:
    with server(tmp_path / "logs") as address, seeder(data, address, tmp_path / "logs") as swarm, \
            child(["fetch", swarm, "--server", address, "--out", str(tmp_path / "out"),
                   "--seed", "--json", *LOCAL]) as proc:
        assert proc.stdout is not None
        read_until(proc.stdout, '"finished"')
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 0
        assert events(read_rest(proc.stdout))[-1]["event"] == "summary"


def test_a_signal_during_shares_hashing_ends_it_promptly(tmp_path: Path) -> None:
    # A sparse file of 200 GiB takes minutes to hash: the hashing thread must stop at the
    # signal, not run to the end while the process waits for it.
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(200 * 1024**3)
    with silent_server() as (address, _), \
            child(["share", str(big), "--server", address, "--json", *LOCAL]) as proc:
        assert proc.stdout is not None
        read_until(proc.stdout, '"started"')  # the hashing begins
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=DEADLINE)
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


# ------------------------------------------------------------------------ timeouts
@pytest.mark.parametrize("command", ["get", "di-get", "fetch"])
def test_timeout_gives_up_with_status_6(command: str, tmp_path: Path) -> None:
    with silent_server() as (address, _):
        where = "--rs" if command == "di-get" else "--server"
        target = "x.bin" if command == "fetch" else "1"
        done = run_cli([command, target, where, address, "--out", str(tmp_path),
                        "--timeout", "0.5", "-q"])
    one_line(done, 6, "gave up after 0.5 s")


# ------------------------------------------------------------------------ -v / -q
def test_verbosity_flags_go_before_or_after_the_command(tmp_path: Path) -> None:
    dead = f"{HOST}:1"
    for args in (["-q", "list", "--server", dead], ["list", "--server", dead, "-q"],
                 ["list", "-vv", "--server", dead]):
        done = run_cli(args)
        assert done.returncode == 4, done.stderr  # Exit.NETWORK, not a usage error
    loud = run_cli(["list", "--server", dead, "-vv"])
    assert " DEBUG " in loud.stderr  # -vv after the command name: DEBUG


def test_log_levels() -> None:
    from p2pshare.cli.main import log_level

    assert [log_level(v, 0) for v in (0, 1, 2, 3)] == [20, 15, 10, 10]
    assert [log_level(0, q) for q in (1, 2)] == [30, 40]


def test_the_collector_is_on_again_when_the_command_runs(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """The command line (``__main__.entry``) starts with the garbage collector off;
    ``main`` turns it on before the command runs (a long-lived command must not run
    without it)."""
    from p2pshare.cli.main import main

    monkeypatch.delenv("P2PSHARE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no configuration file
    gc.disable()
    try:
        assert main(["config", "--json"], collector_paused=True) == 0
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
    assert json.loads(capsys.readouterr().out)["settings"]


# ------------------------------------------------------------------------ stdout / stderr
def test_fetch_prints_the_path_on_stdout_and_progress_on_stderr(data: Path,
                                                                 tmp_path: Path) -> None:
    logs, out = tmp_path / "logs", tmp_path / "out"
    with server(logs) as address, seeder(data, address, logs) as swarm:
        done = run_cli(["fetch", swarm, "--server", address, "--out", str(out), *LOCAL])
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{out / 'data.bin'}\n"
        assert "data.bin: 256.0 KiB of 256.0 KiB (100%)" in done.stderr
        quiet = run_cli(["fetch", swarm, "--server", address, "--out", str(tmp_path / "q"),
                         *LOCAL, "-q"])
        assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_fetch_json_is_one_event_a_line(data: Path, tmp_path: Path) -> None:
    logs, out = tmp_path / "logs", tmp_path / "out"
    with server(logs) as address, seeder(data, address, logs) as swarm:
        done = run_cli(["fetch", swarm, "--server", address, "--out", str(out), *LOCAL,
                        "--json"])
        assert done.returncode == 0, done.stderr
        seen = events(done.stdout)
        kinds = [e["event"] for e in seen]
        assert kinds[0] == "started" and kinds[-2:] == ["finished", "summary"]
        assert set(kinds[1:-2]) == {"progress"}
        assert seen[0]["id"] == swarm and seen[0]["size"] == 256 * 1024
        last = seen[-3]
        assert last["done"] == last["total"] == 256 * 1024 and last["peers"] >= 0
        assert seen[-2]["path"] == str(out / "data.bin") and seen[-1]["exit"] == 0
        missing = run_cli(["fetch", "nothing.bin", "--server", address, "--out", str(out),
                           *LOCAL, "--json"])
        assert missing.returncode == 3
        error, summary = events(missing.stdout)
        assert error["event"] == "error" and error["exit"] == 3 and "no swarm" in error["message"]
        assert summary == {**summary, "event": "summary", "exit": 3}


def test_share_json_and_sigterm(data: Path, tmp_path: Path) -> None:
    with server(tmp_path / "logs") as address, \
            child(["share", str(data), "--server", address, *LOCAL, "--json"]) as proc:
        assert proc.stdout is not None
        shared = events(read_until(proc.stdout, '"finished"'))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == 0
        seen = shared + events(read_rest(proc.stdout))
    assert [e["event"] for e in seen] == ["started", "finished", "summary"]
    assert seen[1]["path"] == str(data) and seen[1]["size"] == 256 * 1024
    assert seen[-1]["exit"] == 0


def test_a_reader_closing_stdout_ends_fetch_quietly(data: Path, tmp_path: Path) -> None:
    """``fetch ... | head``: the reader has what it wanted and closes the pipe; the next
    line fetch writes meets a broken pipe, which ends it with no traceback."""
    logs = tmp_path / "logs"
    with server(logs) as address, seeder(data, address, logs) as swarm:
        args = ["fetch", swarm, "--server", address, "--out", str(tmp_path / "out"), "--seed",
                "--json", *LOCAL]
        proc = subprocess.Popen([sys.executable, "-m", "p2pshare", *args], env=cli_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            assert proc.stdout is not None and proc.stderr is not None
            read_raw_until(proc.stdout.fileno(), b'"finished"')
            proc.stdout.close()  # as head does once it has its lines
            proc.send_signal(signal.SIGTERM)  # the summary line now meets the closed pipe
            assert proc.wait(timeout=DEADLINE) == 0
            err = proc.stderr.read().decode()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert "Traceback" not in err and "Broken pipe" not in err and "Exception" not in err, err


def read_raw_until(fd: int, needle: bytes) -> bytes:
    """Read ``fd`` (no thread, no buffer: the test closes it next) until ``needle``."""
    seen = b""
    end = time.monotonic() + DEADLINE
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        assert chunk, f"{needle!r} not seen; got {seen!r}"
        seen += chunk
    return seen


def test_the_installed_command_and_python_m_share_one_entry(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``p2pshare`` (the installed script) and ``python -m p2pshare`` start the same way,
    by ``__main__.entry`` (the collector off during start-up), and a library caller's
    collector is left as it is."""
    from importlib.metadata import entry_points

    from p2pshare.__main__ import entry
    from p2pshare.cli.main import main

    (script,) = entry_points(group="console_scripts", name="p2pshare")
    assert script.load() is entry
    gc.disable()
    try:  # a caller that keeps the collector off itself: main does not turn it on
        assert main(["completion", "bash"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert "complete" in capsys.readouterr().out
