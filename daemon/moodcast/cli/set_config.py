"""`moodcast set-config -c FILE TABLE.KEY=VALUE ...`: change settings in a config file, its comments kept.

For the installed configuration, which belongs to root: `spotify-auth` runs as the service's user and
cannot write the speaker it was told, so it prints this command to run with sudo instead. Each value
is read as its setting's type says (text as it is, true/false, a number); the whole configuration,
old values and new, is validated before anything is written (moodcast.config_edit writes it).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import stat
import sys
import typing
from collections.abc import Mapping
from pathlib import Path

from moodcast.config import Config, ConfigError
from moodcast.config_edit import ConfigEditError, Setting, Value, check_editable, toml_value

_ASSIGNMENT = re.compile(r"([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)=(.*)", re.DOTALL)
_BOOLEANS = {"true": True, "false": False}
# settings that a Home Assistant switch or an MQTT command also sets, kept in the state directory
RUNTIME_SETTINGS = {("recommendations", "autoplay"): "autoplay", ("recommendations", "policy"): "policy"}


def parse_settings(texts: list[str]) -> dict[Setting, Value]:
    """{(table, key): value} from `table.key=value` words; ConfigError naming the first that is not one."""
    return dict(parse_setting(text) for text in texts)


def parse_setting(text: str) -> tuple[Setting, Value]:
    match = _ASSIGNMENT.fullmatch(text)
    if not match:
        raise ConfigError(f'set-config: "{text}" is not TABLE.KEY=VALUE, e.g. spotify.device_name=Kitchen (a '
                          "setting of a [table] of the file; name the file with -c FILE)")
    table, key, raw = match.groups()
    kind = _setting_type(table, key)
    if kind is str:
        return (table, key), raw
    if kind is bool:
        if raw not in _BOOLEANS:
            raise ConfigError(f"set-config: [{table}] {key} is true or false, not {raw!r}")
        return (table, key), _BOOLEANS[raw]
    try:
        number = kind(raw)
    except ValueError:
        raise ConfigError(f"set-config: [{table}] {key} is a number, not {raw!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"set-config: [{table}] {key} must be a finite number, not {raw!r}")
    return (table, key), number


def _setting_type(table: str, key: str) -> type:
    tables = typing.get_type_hints(Config)
    section = tables.get(table)
    if not dataclasses.is_dataclass(section):
        raise ConfigError(f"set-config: no table [{table}] in a moodcast configuration")
    kind = typing.get_type_hints(section).get(key)
    if kind is None:
        raise ConfigError(f"set-config: no setting {key!r} in [{table}]")
    if isinstance(kind, type) and issubclass(kind, str):  # a closed set of words (policy): the loader checks it
        return str
    if kind not in (bool, int, float):
        raise ConfigError(f"set-config: [{table}] {key} is not text, true/false or a number: edit the file for it")
    return kind


def as_overrides(changes: dict[Setting, Value]) -> dict[str, dict[str, Value]]:
    """The changes as config.load's overrides, so that the file with them is validated as a whole first."""
    nested: dict[str, dict[str, Value]] = {}
    for (table, key), value in changes.items():
        nested.setdefault(table, {})[key] = value
    return nested


def listed(changes: Mapping[Setting, Value]) -> str:
    return " and ".join(f"[{table}] {key} = {toml_value(value)}" for (table, key), value in changes.items())


def switch_notes(changes: dict[Setting, Value]) -> list[str]:
    """A note for each changed setting that Home Assistant can switch too: the daemon keeps the last
    switch in its state directory, and that wins over the file at start (service/settings.py)."""
    return [f"note: if {name} was ever switched from Home Assistant or over MQTT (set/{name}), that saved choice "
            "wins over the file at start; switch it there too" for setting, name in RUNTIME_SETTINGS.items()
            if setting in changes]


def set_config_command(path: str, changes: Mapping[Setting, Value]) -> str | None:
    """The `moodcast set-config` line that writes `changes`, with sudo where this user may not; None for a
    link or a special file, which set-config refuses as well."""
    try:
        check_editable(path)
        sudo = ""
    except ConfigEditError:
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
        except OSError:
            return None
        sudo = "sudo "
    program = Path(sys.executable).with_name("moodcast")  # the venv's own, e.g. /opt/moodcast/venv/bin/moodcast
    words = [str(program) if program.exists() else "moodcast", "set-config", "-c", path]
    words += [f"{table}.{key}={toml_value(value) if isinstance(value, bool) else value}"
              for (table, key), value in changes.items()]
    return sudo + shlex.join(words)
