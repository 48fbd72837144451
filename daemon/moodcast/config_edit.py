"""Set a few keys in a user's config.toml, keeping every comment, blank line and the order of the rest.

A line-based edit of simple tables (`[spotify]`, `[recommendations]`): a key's line keeps its indent
and comment, with only the value replaced; a missing key goes after the table's last setting, a
missing table at the end. The result is parsed again and must equal the old data plus the new
values, else nothing is written (a layout this edit does not understand: an inline table, a
dotted key, a value over several lines). The file is replaced atomically with the same mode (and
owner, where allowed); symbolic links and special files are refused, never followed or replaced.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from moodcast.config import MAX_CONFIG_BYTES
from moodcast.errors import EX_CONFIG, MoodcastError
from moodcast.util import read_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6)
    import tomli as tomllib

Setting = tuple[str, str]  # (table, key), e.g. ("spotify", "device_name")
_HEADER = re.compile(r"^\s*\[")


class ConfigEditError(MoodcastError):
    """The file cannot be changed safely; the message says why (the caller shows the lines to paste)."""

    exit_code = EX_CONFIG


class _Unsupported(Exception):
    """A layout this line-based edit does not handle."""


Value = str | bool | int | float


def toml_value(value: Value) -> str:
    """A TOML basic string, boolean or number (JSON's string escapes are TOML's, except DEL, which TOML
    wants escaped; a finite float's repr is a TOML float)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def set_values(path: str | Path, values: Mapping[Setting, Value]) -> None:
    """Write `values` into the TOML file at `path`; ConfigEditError when that cannot be done safely."""
    path = Path(path)
    info, text = _read(path)
    newline = "\r\n" if "\r\n" in text else "\n"
    expected = copy.deepcopy(_parse(path, text))
    for (table, key), value in values.items():
        expected.setdefault(table, {})[key] = value
    try:
        edited = text
        for (table, key), value in values.items():
            edited = _set(edited, table, key, toml_value(value), newline)
        same = tomllib.loads(edited) == expected
    except (_Unsupported, tomllib.TOMLDecodeError):
        same = False
    if not same:
        raise ConfigEditError(f"{path}: its layout is more than this edit understands (an inline table, a dotted "
                              "key or a value over several lines); nothing was changed")
    _replace(path, edited, info)


def check_editable(path: str | Path) -> os.stat_result:
    """The file's status if this user may change it: a regular file (not a link), writable; else ConfigEditError."""
    try:
        info = os.lstat(path)
    except OSError as e:
        raise ConfigEditError(f"{path}: {e.strerror or e}") from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigEditError(f"{path} is a symbolic link; moodcast changes only a file itself (edit "
                              f"{os.path.realpath(path)} by hand)")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigEditError(f"{path} is not a regular file")
    if not os.access(path, os.W_OK):
        raise ConfigEditError(f"user {_user(os.geteuid())} may not change {path} (it belongs to {_user(info.st_uid)}, "
                              f"mode {stat.S_IMODE(info.st_mode):04o})")
    return info


def _read(path: Path) -> tuple[os.stat_result, str]:
    info = check_editable(path)
    try:
        data, _ = read_regular(path, MAX_CONFIG_BYTES, follow=False)
    except OSError as e:  # NotARegularFile too: a FIFO put there since check_editable
        raise ConfigEditError(f"{path}: cannot read it ({e.strerror or e})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigEditError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; not a moodcast configuration")
    try:
        return info, data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigEditError(f"{path}: not UTF-8 text") from None


def _parse(path: Path, text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigEditError(f"{path}: not valid TOML ({e}); nothing was changed") from None


def _set(text: str, table: str, key: str, value: str, newline: str) -> str:
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        ending = "" if not text or text.endswith(("\n", "\r")) else newline
        return f"{text}{ending}{newline}[{table}]{newline}{key} = {value}{newline}"
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    assignment = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)(.*?)(\r?\n)?\Z", re.S)
    for i in range(start + 1, end):
        found = assignment.match(lines[i])
        if found:
            lines[i] = found.group(1) + _with_comment(found.group(2), value) + (found.group(3) or "")
            return "".join(lines)
    last = max(i for i in range(start, end) if lines[i].strip() and not lines[i].lstrip().startswith("#"))
    if not lines[last].endswith(("\n", "\r")):
        lines[last] += newline
    lines.insert(last + 1, f"{key} = {value}{newline}")
    return "".join(lines)


def _with_comment(rest: str, value: str) -> str:
    """`rest` (an old value and maybe a comment) with the value replaced and the comment kept in its column."""
    ends = [m.start() for m in re.finditer("#", rest)] + [len(rest)]
    for end in ends:  # the first '#' outside the old value starts the comment
        try:
            tomllib.loads(f"v = {rest[:end]}")
        except tomllib.TOMLDecodeError:
            continue
        old, comment = rest[:end], rest[end:]
        if not comment:
            return value
        return value + " " * max(1, len(old) - len(value)) + comment
    raise _Unsupported("the old value spans lines")


def _replace(path: Path, text: str, info: os.stat_result) -> None:
    """A temporary file beside `path` with its mode (and owner), synced, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise ConfigEditError(f"{path}: cannot write beside it as user {_user(os.geteuid())} "
                              f"({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), stat.S_IMODE(info.st_mode))
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(f.fileno(), info.st_uid, info.st_gid)
                except PermissionError:
                    pass  # only root may give a file away; the file then belongs to whoever edits it
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigEditError(f"{path}: cannot replace it ({e.strerror or e}); nothing was changed") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
