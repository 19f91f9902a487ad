"""Rough edges a new user met in the first hour (issue #13), as real processes: each
failure is one line that names the user's own path or option, stdout holds only results,
and the docs' examples and tables say what the commands do."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from p2pshare.samples import write_sample_rfcs

from ..helpers import DEADLINE, read_until, run_cli
from ..swarm.procs import LOCAL, seeder, server
from .test_cli_core import child


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    tree = tmp_path / "My Photos"
    (tree / "sub dir").mkdir(parents=True)
    (tree / "sub dir" / "é 日本.txt").write_bytes(b"hello\n" * 1000)
    (tree / "empty.txt").write_bytes(b"")
    return tree


def one_line(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    """``done`` exited ``status`` with one line of reason (log lines aside) naming ``words``
    in the user's terms (no raw ``[Errno N]``)."""
    lines = [line for line in done.stderr.splitlines() if " INFO " not in line]
    assert done.returncode == status, done.stderr
    assert len(lines) == 1 and lines[0].startswith("p2pshare: "), done.stderr
    assert all(w in lines[0] for w in words), done.stderr
    assert "Errno" not in lines[0], done.stderr


@pytest.mark.parametrize("out, words", [
    ("a-file", ("a-file is not a folder",)),
    ("a-file/sub", ("cannot write in", "a-file/sub", "Not a directory")),
    ("o", ("cannot write in o: My Photos: Not a directory",)),  # o/My Photos is a file
])
def test_fetch_into_a_path_that_is_a_file(folder: Path, tmp_path: Path, out: str,
                                          words: tuple[str, ...]) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "My Photos").write_text("not a folder")
    logs = tmp_path / "logs"
    with server(logs) as address, seeder(folder, address, logs) as swarm:
        done = run_cli(["fetch", swarm, "--server", address, "--out", out, *LOCAL],
                       cwd=tmp_path)
    one_line(done, 7, *words)
    assert done.stdout == ""


def test_lookup_of_an_rfc_nobody_holds_prints_no_table(tmp_path: Path) -> None:
    with server(tmp_path / "logs") as address:
        done = run_cli(["lookup", "9999", "--server", address])
        as_json = run_cli(["lookup", "9999", "--server", address, "--json"])
    one_line(done, 3, "RFC 9999: 404 Not Found")
    assert done.stdout == ""
    assert as_json.returncode == 3 and as_json.stdout.strip() == "[]"


def test_help_shows_the_default_in_effect_and_never_none() -> None:
    plain = run_cli(["fetch", "--help"])
    configured = run_cli(["fetch", "--help"], env={"P2PSHARE_TIMEOUT": "120",
                                                   "P2PSHARE_MAX_DOWNLOAD_RATE": "2M"})
    for done in (plain, configured):
        assert done.returncode == 0 and "None" not in done.stdout, done.stdout
    flat = " ".join(plain.stdout.split())
    assert "exit status 6; default none)" in flat and "2M (default none)" in flat
    assert "retried until it answers or --timeout passes" in flat
    flat = " ".join(configured.stdout.split())
    assert "exit status 6; default 120)" in flat and "no limit" not in flat
    assert "2M (default 2M)" in flat


@pytest.mark.parametrize("args", [["get", "0", "--server", "127.0.0.1:1"],
                                  ["lookup", "1000000", "--server", "127.0.0.1:1"],
                                  ["di-get", "0", "--rs", "127.0.0.1:1"]])
def test_an_rfc_number_out_of_range_is_a_usage_error(args: list[str]) -> None:
    """Said at once (exit 2), not after a round trip as a server's 400 (exit 1)."""
    done = run_cli(args)
    assert done.returncode == 2, done.stderr
    assert "RFC numbers are 1 to 999999" in done.stderr.splitlines()[-1]


def test_a_peer_asked_for_an_rfc_only_it_holds_says_so(tmp_path: Path) -> None:
    """README's ``printf 'list\\nget 2345\\nquit\\n' | p2pshare peer …`` on a folder holding
    RFC 2345: the index names only this peer, which is not 'a holder that could not send'."""
    write_sample_rfcs(tmp_path / "rfcs", {2345: 5000})
    with server(tmp_path / "logs") as address:
        done = run_cli(["peer", "--server", address, "--dir", str(tmp_path / "rfcs"), *LOCAL],
                       input="list\nget 2345\nquit\n")
    assert done.returncode == 0, done.stderr
    assert "=> RFC 2345: no other peer holds it" in done.stdout
    assert "no holder could send it" not in done.stdout


@pytest.mark.parametrize("words, offered", [
    (["fetch", "--o"], "--out --only"),
    (["-q", "fetch", "--ma"], "--max-download-rate --max-upload-rate"),
    (["fetch", "--out", ""], ""),  # a value: bash's -o default then offers file names
    (["share", ""], ""),
    (["completion", ""], "bash zsh"),
    (["fe"], "fetch"),
])
def test_bash_completion_offers_options_only_for_an_option(tmp_path: Path, words: list[str],
                                                            offered: str) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    script = tmp_path / "p2pshare.bash"
    script.write_text(run_cli(["completion", "bash"]).stdout)
    line = " ".join(f"'{w}'" for w in ["p2pshare", *words])
    done = subprocess.run(
        [bash, "-c", f'source "$1"; COMP_WORDS=({line}); COMP_CWORD={len(words)}; '
                     '_p2pshare; echo "${COMPREPLY[*]}"', "bash", str(script)],
        capture_output=True, text=True, timeout=20, check=True)
    assert done.stdout.strip() == offered


def test_an_interrupted_fetch_says_how_to_resume(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, served at 64 KiB/s
    logs = tmp_path / "logs"
    with server(logs) as address, \
            seeder(data, address, logs, "--piece-size", "16K", "--max-upload-rate", "64K") \
            as swarm:
        with child(["fetch", swarm, "--server", address, "--out", str(tmp_path / "o"),
                    "--json", *LOCAL]) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            read_until(proc.stdout, '"progress"')
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=DEADLINE) == 130
            last = proc.stderr.read().splitlines()[-1]
    assert last.startswith("p2pshare: interrupted: ") and "of 64 pieces" in last
    assert last.endswith("run the same command again to resume")


@pytest.mark.parametrize("size", [3, 6000])  # another size; the same size, other bytes
def test_a_different_file_in_the_way_is_a_local_problem(folder: Path, tmp_path: Path,
                                                         size: int) -> None:
    """Exit 7 (move it away), not 5 (the data failed its check), naming the whole path."""
    in_the_way = tmp_path / "out" / "My Photos" / "sub dir" / "é 日本.txt"
    in_the_way.parent.mkdir(parents=True)
    in_the_way.write_bytes(b"x" * size)
    logs = tmp_path / "logs"
    with server(logs) as address, seeder(folder, address, logs) as swarm:
        done = run_cli(["fetch", swarm, "--server", address, "--out", str(tmp_path / "out"),
                        *LOCAL])
    one_line(done, 7, f"{in_the_way} exists and is not this file; move it away first")
    assert in_the_way.read_bytes() == b"x" * size


def test_get_json_of_an_rfc_nobody_holds_has_get_json_shape(tmp_path: Path) -> None:
    """A script piping ``get --json`` into a JSON parser gets one object whatever happened."""
    with server(tmp_path / "logs") as address:
        done = run_cli(["get", "9999", "--server", address, "--out", str(tmp_path), "--json"])
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout) == {"rfc": 9999, "path": None, "size": 0, "host": None,
                                       "port": None, "attempts": []}


def test_fetch_json_of_an_ambiguous_name_lists_the_matches(tmp_path: Path) -> None:
    """Without ``--json`` the matches are a table; with it, the error event carries them, so
    a script can pick an id."""
    for name, text in (("a", "one\n"), ("b", "two\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "same.txt").write_text(text)
    logs = tmp_path / "logs"
    with server(logs) as address, seeder(tmp_path / "a" / "same.txt", address, logs) as one, \
            seeder(tmp_path / "b" / "same.txt", address, logs) as two:
        done = run_cli(["fetch", "same.txt", "--server", address, "--json", *LOCAL],
                       cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    error = [json.loads(line) for line in done.stdout.splitlines()][0]
    assert error["event"] == "error" and error["exit"] == 2
    assert sorted(m["id"] for m in error["matches"]) == sorted([one, two])


def test_demo_quiet_writes_nothing_on_stderr(tmp_path: Path) -> None:
    """``-q``: warnings and errors only; the demo's walk-through stays on stdout."""
    done = run_cli(["demo", "-q", "--out", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "Every step behaved" in done.stdout


@pytest.mark.parametrize("server, hint", [("::1:33533", True), ("a b", False)])
def test_a_server_address_that_cannot_be_one_is_a_usage_error(server: str, hint: bool) -> None:
    """Said at once (exit 2), not as a failed name look-up (exit 4) of "[::1:33533]:7734"."""
    done = run_cli(["list", "--server", server])
    assert done.returncode == 2, done.stderr
    last = done.stderr.splitlines()[-1]
    assert f"not HOST[:PORT]: {server!r}" in last
    assert ("[ADDR]:PORT" in last) == hint


def test_a_fetch_that_runs_out_of_time_is_one_line_saying_how_to_resume(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, served at 64 KiB/s: 16 s
    logs = tmp_path / "logs"
    with server(logs) as address, \
            seeder(data, address, logs, "--piece-size", "16K", "--max-upload-rate", "64K") \
            as swarm:
        done = run_cli(["fetch", swarm, "--server", address, "--out", str(tmp_path / "o"),
                        "--timeout", "2", "-q", *LOCAL])
    one_line(done, 6, "gave up after 2 s (--timeout): ", " of 64 pieces verified and kept; "
             "run the same command again to resume")


@pytest.mark.parametrize("value", ["inf", "nan", "0"])
def test_a_timeout_that_is_no_limit_says_how_to_have_none(value: str) -> None:
    done = run_cli(["get", "1", "--timeout", value])
    assert done.returncode == 2
    assert "must be a finite number above 0 (leave it out for no limit)" in done.stderr


@pytest.mark.parametrize("offset", ["-1", "99999999999999999999"])
def test_files_offset_out_of_range_is_a_usage_error(offset: str) -> None:
    """Not silently 0 (-1), nor the tracker's 400 after a round trip (exit 1)."""
    done = run_cli(["files", "--offset", offset, "--server", "127.0.0.1:1"])
    assert done.returncode == 2, done.stderr
    assert f"must be from 0 to 2147483648: {offset!r}" in done.stderr


def test_the_end_of_a_fetch_says_who_sent_the_pieces(folder: Path, tmp_path: Path) -> None:
    """The links are closed by then, so 'peers' (connected) is 0; 'sources' is not."""
    logs = tmp_path / "logs"
    with server(logs) as address, seeder(folder, address, logs) as swarm:
        done = run_cli(["fetch", swarm, "--server", address, "--out", str(tmp_path / "o"),
                        "--json", *LOCAL])
        plain = run_cli(["fetch", swarm, "--server", address, "--out", str(tmp_path / "p"),
                         *LOCAL])
    assert done.returncode == 0 and plain.returncode == 0, done.stderr + plain.stderr
    last = [json.loads(line) for line in done.stdout.splitlines()
            if json.loads(line)["event"] == "progress"][-1]
    assert last["done"] == last["total"] and last["sources"] == 1
    assert "100%), " in plain.stderr and "from 1 peers, pieces 1/1" in plain.stderr
