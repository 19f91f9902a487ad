"""Settings from a TOML file and environment variables: defaults for command-line options.

Strategy: one table (``SETTINGS``) names each setting once: its key in the file, its
environment variable and the option (argparse ``dest``) it gives a default to. Before the
command line is parsed, ``apply_settings`` sets the default of that option in every
sub-command that has it, so precedence is flag > environment > file > built-in default
(docs/cli.md#configuration) and ``--help`` shows the default in effect. Each value is
checked with the option's own argparse type, as if typed on the command line; a bad file
or value is a ``ConfigError`` (one line, ``Exit.USAGE``), never a traceback.

The file: ``$P2PSHARE_CONFIG``, else ``$XDG_CONFIG_HOME/p2pshare/config.toml``, else
``~/.config/p2pshare/config.toml``; a missing file is no error (unless named by
``$P2PSHARE_CONFIG``). Keys sit at the top level, e.g. ``server = "10.0.0.5:7734"``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True, slots=True)
class Setting:
    """One configurable default: ``key`` in the file, ``env`` variable, option ``dest``."""

    key: str
    env: str
    dest: str
    about: str
    commands: frozenset[str] | None = None  # None: every sub-command with the option


SETTINGS = (
    Setting("server", "P2PSHARE_SERVER", "server", "index server HOST[:PORT]"),
    Setting("rs", "P2PSHARE_RS", "rs", "registration server HOST[:PORT]"),
    Setting("out", "P2PSHARE_OUT", "out", "folder downloads are written to",
            frozenset({"get", "di-get", "fetch"})),
    Setting("timeout", "P2PSHARE_TIMEOUT", "timeout", "seconds a download may take"),
    Setting("max_upload_rate", "P2PSHARE_MAX_UPLOAD_RATE", "max_upload_rate",
            "upload limit, bytes per second (e.g. 10M)"),
    Setting("max_download_rate", "P2PSHARE_MAX_DOWNLOAD_RATE", "max_download_rate",
            "download limit, bytes per second (e.g. 10M)"),
)


@dataclass(frozen=True, slots=True)
class Effective:
    """A setting's value in effect and where it came from."""

    setting: Setting
    value: str | None  # as it would be typed on the command line; None: no default
    source: str  # "default", "env P2PSHARE_X" or "file PATH"
    commands: tuple[str, ...]  # the sub-commands it gives a default to


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the configuration file is looked for."""
    if environ.get("P2PSHARE_CONFIG"):
        return Path(environ["P2PSHARE_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "p2pshare" / "config.toml"


def read_file(path: Path, *, required: bool) -> dict[str, str]:
    """The file's settings as strings (a missing file: none, unless ``required``)."""
    try:
        with open(path, "rb") as f:
            import tomllib  # only once there is a file: most runs have none

            data = tomllib.load(f)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} (P2PSHARE_CONFIG) does not exist") from None
        return {}
    except (OSError, ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        raise ConfigError(f"config file {path}: {exc}") from None
    known = {s.key for s in SETTINGS}
    values: dict[str, str] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"config file {path}: unknown key {key!r} "
                              f"(known: {', '.join(sorted(known))})")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"config file {path}: {key} must be a string or a number")
        values[key] = str(value)
    return values


def effective(parser: argparse.ArgumentParser,
              environ: Mapping[str, str] = os.environ) -> list[Effective]:
    """Each setting's value in effect (environment over file over the parser's default)."""
    path = config_path(environ)
    in_file = read_file(path, required=bool(environ.get("P2PSHARE_CONFIG")))
    result = []
    for setting in SETTINGS:
        actions = dict(_actions(parser, setting))
        given = _given(setting, in_file, path, environ)
        if given is None:
            value, source = _default(actions), "default"
        else:
            value, source = given
            _check(setting, value, actions, source)
        result.append(Effective(setting, value, source, tuple(sorted(actions))))
    return result


def _given(setting: Setting, in_file: Mapping[str, str], path: Path,
           environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The value set for ``setting`` and its source: the environment over the file."""
    if environ.get(setting.env):
        return environ[setting.env], f"env {setting.env}"
    if setting.key in in_file:
        return in_file[setting.key], f"file {path}"
    return None


def apply_settings(parser: argparse.ArgumentParser,
                   environ: Mapping[str, str] = os.environ) -> list[Effective]:
    """Give every sub-command the defaults in effect; returns them (``effective``)."""
    values = effective(parser, environ)
    for value in values:
        if value.source == "default":
            continue
        for _command, action in _actions(parser, value.setting):
            action.default = value.value  # a string: argparse converts it with ``type``
    return values


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers of ``parser`` by name (aliases excluded)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _actions(parser: argparse.ArgumentParser,
             setting: Setting) -> Iterator[tuple[str, argparse.Action]]:
    for name, sub in subparsers(parser).items():
        if setting.commands is not None and name not in setting.commands:
            continue
        for action in sub._actions:
            if action.dest == setting.dest and action.option_strings \
                    and action.help is not argparse.SUPPRESS:
                yield name, action


def _default(actions: Mapping[str, argparse.Action]) -> str | None:
    for action in actions.values():
        default = action.default
        if default is None or default is argparse.SUPPRESS:
            return None
        if isinstance(default, tuple):  # HOST, PORT
            return ":".join(str(part) for part in default)
        return str(default)
    return None


def _check(setting: Setting, value: str, actions: Mapping[str, argparse.Action],
           source: str) -> None:
    for action in actions.values():
        convert = action.type
        if not callable(convert):
            continue
        try:
            convert(value)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            reason = str(exc) or f"invalid value {value!r}"
            raise ConfigError(f"{setting.key} from {source}: {reason}") from None
        return
