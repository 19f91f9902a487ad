"""One name per meaning in every command, old spellings hidden but accepted; no traceback
for a bad value or a missing folder; a missing extra named, a broken install told apart;
completion."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from p2pshare.cli.config import subparsers
from p2pshare.cli.exits import Exit
from p2pshare.cli.main import build_parser

from ..helpers import cli_env, run_cli

# The contract: the commands each option name belongs to (docs/cli.md#options).
NAMES = {
    "--out": {"get", "di-get", "fetch", "experiment", "demo"},
    "--dir": {"peer", "di-peer", "seed"},
    "--listen": {"server", "rs", "peer", "di-peer", "share", "fetch", "seed", "demo"},
    "--advertise": {"peer", "di-peer", "share", "fetch"},
    "--timeout": {"get", "di-get", "fetch"},
}
# Old spellings, still accepted: (command, old, new).
OLD = [("get", "--dir", "--out"), ("di-get", "--dir", "--out"), ("demo", "--dir", "--out"),
       ("peer", "--hostname", "--advertise"), ("di-peer", "--hostname", "--advertise"),
       ("share", "--host", "--advertise"), ("fetch", "--host", "--advertise"),
       ("server", "--host", "--listen"), ("rs", "--host", "--listen"),
       ("di-peer", "--bind", "--listen"), ("peer", "--upload-port", "--port")]


def shown_options(p: argparse.ArgumentParser) -> set[str]:
    return {s for a in p._actions if a.help is not argparse.SUPPRESS for s in a.option_strings}


def test_each_option_name_is_in_every_command_it_belongs_to() -> None:
    commands = subparsers(build_parser())
    for option, owners in NAMES.items():
        assert {c for c, p in commands.items() if option in shown_options(p)} == owners, option
    assert "--port" in shown_options(commands["peer"])


@pytest.mark.parametrize("command, old, new", OLD)
def test_an_old_spelling_is_a_hidden_alias(command: str, old: str, new: str) -> None:
    p = subparsers(build_parser())[command]
    assert old not in shown_options(p) and old not in p.format_help()
    value = "7" if "port" in old else "somewhere"
    positional = {"get": ["1"], "di-get": ["1"], "fetch": ["x"], "share": ["x"]}
    required = ["--dir", "d"] if command in ("peer", "di-peer") and old != "--dir" else []
    for spelling in (old, new):
        args = p.parse_args([*positional.get(command, []), *required, spelling, value])
        assert str(getattr(args, new[2:].replace("-", "_"))) == value


def test_listen_defaults_to_all_addresses() -> None:
    """None reaches the servers' start functions, which bind every address, IPv4 and IPv6,
    on one socket (tests/net/test_listen.py); the demo alone listens on loopback."""
    parser = build_parser()
    for args in (["server"], ["rs"], ["peer", "--dir", "d"], ["di-peer", "--dir", "d"],
                 ["share", "x"], ["fetch", "x"]):
        assert parser.parse_args(args).listen is None, args
    assert parser.parse_args(["demo"]).listen == "127.0.0.1"


@pytest.mark.parametrize("args, status, words", [
    (["share", "x", "--port", "70000"], 2, "not a port number"),
    (["fetch", "x", "--port", "70000"], 2, "not a port number"),
    (["experiment", "--rfc-dir", "no-such-folder", "--no-plot"], 7, "is not a folder"),
    (["demo", "--out", "a-file"], 7, "is not a folder"),
    (["demo", "--dir", "a-file"], 7, "is not a folder"),
    (["get", "1", "--out", "no-such-folder"], 7, "is not a folder"),
])
def test_bad_values_are_one_line(tmp_path: Path, args: list[str], status: int,
                                 words: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    done = run_cli(args, cwd=tmp_path)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr and words in done.stderr.splitlines()[-1]
    assert status == 2 or len(done.stderr.splitlines()) == 1


ABSENT = "raise ModuleNotFoundError(\"No module named '{0}'\", name='{0}')\n"
BROKEN = "from {0}_gone_astray import nothing\n"


def shim(tmp_path: Path, body: str, module: str = "matplotlib") -> dict[str, str]:
    """An environment where ``import MODULE`` runs ``body`` (a stand-in package first
    on the path)."""
    (tmp_path / "shim" / module).mkdir(parents=True)
    (tmp_path / "shim" / module / "__init__.py").write_text(body)
    path = cli_env().get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{tmp_path / 'shim'}:{path}" if path else str(tmp_path / "shim")}


def test_experiment_without_matplotlib_says_which_extra(tmp_path: Path) -> None:
    env = shim(tmp_path, ABSENT.format("matplotlib"))
    out = tmp_path / "results"
    done = run_cli(["experiment", "--out", str(out)], env=env)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "p2pshare[plot]" in line and "--no-plot" in line and len(line.splitlines()) == 1
    assert not out.exists()  # said at once, before any work
    broken = run_cli(["experiment", "--out", str(out)],
                     env=shim(tmp_path / "broken", BROKEN.format("matplotlib")))
    assert broken.returncode == 1 and "p2pshare[plot]" not in broken.stderr, broken.stderr


def test_an_unexpected_error_is_one_line_unless_vv(tmp_path: Path) -> None:
    env = shim(tmp_path, "raise RuntimeError('a broken install')\n")
    done = run_cli(["experiment", "--out", str(tmp_path / "r")], env=env)
    assert done.returncode == 1
    assert done.stderr == ("p2pshare: RuntimeError: a broken install "
                           "(run with -vv for details)\n")
    loud = run_cli(["experiment", "--out", str(tmp_path / "r"), "-vv"], env=env)
    assert loud.returncode == 1 and "Traceback" in loud.stderr


def test_every_help_ends_with_an_example() -> None:
    for name, p in subparsers(build_parser()).items():
        assert f"example:\n  p2pshare {name}" in p.format_help(), name


def test_bash_completion_names_every_command_and_option() -> None:
    done = run_cli(["completion", "bash"])
    assert done.returncode == 0
    commands = subparsers(build_parser())
    for name, p in commands.items():
        assert f"        {name}) opts=\"" in done.stdout
        assert all(o in done.stdout for o in shown_options(p))
    assert "--hostname" not in done.stdout  # hidden aliases are not offered
    bash = shutil.which("bash")
    if bash is not None:
        subprocess.run([bash, "-n"], input=done.stdout, text=True, check=True, timeout=20)
    zsh = run_cli(["completion", "zsh"])
    assert zsh.returncode == 0 and "bashcompinit" in zsh.stdout


@pytest.mark.parametrize(("command", "option", "module", "extra"), [
    ("server", "--metrics-port", "prometheus_client", "metrics"),
    ("rs", "--metrics-port", "prometheus_client", "metrics"),
    ("server", "--store", "redis", "redis"),
    ("rs", "--store", "redis", "redis"),
])
def test_a_missing_extra_is_named_and_a_broken_import_is_not_mistaken_for_one(
        tmp_path: Path, command: str, option: str, module: str, extra: str) -> None:
    """An optional dependency that is not installed is named with its extra; any other
    import failure on the same path (a broken install) is reported as itself."""
    value = "redis://127.0.0.1:1/0" if option == "--store" else "0"
    args = [command, "--port", "0", option, value]
    absent = run_cli(args, env=shim(tmp_path / "absent", ABSENT.format(module), module),
                     timeout=30)
    assert absent.returncode == Exit.LOCAL, absent.stderr
    assert f"p2pshare[{extra}]" in absent.stderr and len(absent.stderr.splitlines()) == 1
    broken = run_cli(args, env=shim(tmp_path / "broken", BROKEN.format(module), module),
                     timeout=30)
    assert broken.returncode == 1, broken.stderr
    assert f"p2pshare[{extra}]" not in broken.stderr
    assert f"No module named '{module}_gone_astray'" in broken.stderr
