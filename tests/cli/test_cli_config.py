"""Settings: flag > environment > file > default, each level through a real process with
its own HOME / XDG_CONFIG_HOME (docs/cli.md#configuration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..aio import HOST, free_port
from ..helpers import run_cli


def write_config(folder: Path, text: str) -> Path:
    path = folder / "p2pshare" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def settings(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    done = run_cli(["config", "--json"], env=env)
    assert done.returncode == 0, done.stderr
    return {s["key"]: s for s in json.loads(done.stdout)["settings"]}


def dead() -> str:
    """An address where nothing listens (a connection to it is refused)."""
    return f"{HOST}:{free_port()}"


def test_each_level_of_precedence(tmp_path: Path) -> None:
    file_server, env_server, flag_server = dead(), dead(), dead()
    path = write_config(tmp_path, f'server = "{file_server}"\ntimeout = 30\n')
    xdg = {"XDG_CONFIG_HOME": str(tmp_path)}
    shown = settings(xdg)
    assert shown["server"]["value"] == file_server
    assert shown["server"]["source"] == f"file {path}"
    assert shown["timeout"]["value"] == "30" and shown["rs"]["source"] == "default"
    assert shown["rs"]["value"] == "127.0.0.1:65423"
    both = {**xdg, "P2PSHARE_SERVER": env_server}
    assert settings(both)["server"] == {**settings(both)["server"], "value": env_server,
                                        "source": "env P2PSHARE_SERVER"}
    # a real command: file, then the environment over it, then the flag over both
    for env, args, used in ((xdg, [], file_server), (both, [], env_server),
                            (both, ["--server", flag_server], flag_server)):
        done = run_cli(["list", *args], env=env)
        assert done.returncode == 4 and f"cannot connect to {used}" in done.stderr, done.stderr
    helped = run_cli(["get", "--help"], env=both)
    assert f"(default {env_server})" in helped.stdout  # --help shows the default in effect


def test_home_fallback_and_explicit_file(tmp_path: Path) -> None:
    write_config(tmp_path / "home" / ".config", 'rs = "10.0.0.9:1"\n')
    home = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": ""}
    assert settings(home)["rs"]["value"] == "10.0.0.9:1"
    other = tmp_path / "other.toml"
    other.write_text('out = "downloads"\n')
    chosen = settings({**home, "P2PSHARE_CONFIG": str(other)})
    assert chosen["out"]["value"] == "downloads" and chosen["rs"]["source"] == "default"


def test_a_setting_reaches_the_command(tmp_path: Path) -> None:
    """P2PSHARE_OUT acts as --out (``~`` the home folder, as a shell would expand it)."""
    done = run_cli(["get", "1", "--server", dead()],
                   env={"P2PSHARE_OUT": "~/missing", "HOME": str(tmp_path)})
    assert done.returncode == 7, done.stderr
    assert f"{tmp_path / 'missing'} is not a folder" in done.stderr


@pytest.mark.parametrize("text, words", [
    ("server = ", "config file"),
    ('sever = "x"', "unknown key 'sever'"),
    ('server = "127.0.0.1:http"', "not HOST[:PORT]"),
    ("timeout = -1", "timeout from file"),
    ("server = [1]", "must be a string or a number"),
    pytest.param("server = " + "[" * 5000 + "]" * 5000, "config file",
                 id="nested-deeper-than-tomllib-goes"),
])
def test_a_bad_file_is_one_line_and_status_2(tmp_path: Path, text: str, words: str) -> None:
    write_config(tmp_path, text)
    done = run_cli(["list"], env={"XDG_CONFIG_HOME": str(tmp_path)})
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr


@pytest.mark.parametrize("env", [{"P2PSHARE_TIMEOUT": "soon"},
                                 {"P2PSHARE_MAX_UPLOAD_RATE": "fast"},
                                 {"P2PSHARE_CONFIG": "/nonexistent/p2pshare.toml"}])
def test_a_bad_variable_is_one_line_and_status_2(env: dict[str, str]) -> None:
    done = run_cli(["config"], env=env)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
