"""Small helpers several parts share: closed sets of words (TextEnum), reading a file that must be a
regular file (read_regular: a FIFO or a device never hangs or is opened), and private JSON files
written atomically (JsonFile). They import nothing of moodcast's, so any module may use them."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
from enum import Enum
from pathlib import Path
from typing import Any

log = logging.getLogger("moodcast")


class TextEnum(str, Enum):
    """A closed set of words: a str, so a member is published, compared, formatted and written to
    JSON as its value ("uplift", never "Policy.UPLIFT"), on every Python from 3.10 on."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class NotARegularFile(OSError):
    """A FIFO, device, socket or directory where a file was expected; str() is e.g. "not a regular file (a FIFO)"."""

    def __init__(self, path: str | os.PathLike, mode: int):
        super().__init__(errno.EINVAL, f"not a regular file ({file_kind(mode)})", str(path))

    def __str__(self) -> str:
        return str(self.strerror)


_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISLNK, "a symbolic link"))


def file_kind(mode: int) -> str:
    """'a FIFO', 'a directory', ... for an st_mode."""
    return next((kind for test, kind in _KINDS if test(mode)), "not a file")


def check_regular(path: str | os.PathLike, follow: bool = True) -> os.stat_result:
    """stat() a path that must be a regular file: OSError if it is missing (ELOOP: a symbolic link, with
    follow=False), NotARegularFile if it is a FIFO (opening one waits for a writer), a device (opening
    /dev/watchdog arms it), a socket or a directory."""
    st = os.stat(path, follow_symlinks=follow)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, "is a symbolic link", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(path, st.st_mode)
    return st


def read_regular(path: str | os.PathLike, limit: int, follow: bool = True) -> tuple[bytes, os.stat_result]:
    """At most `limit` + 1 bytes of a regular file, and its fstat. Refused before it is opened when it is
    no regular file (check_regular), and again after: O_NONBLOCK, then fstat, so a FIFO put there
    meanwhile cannot hang the read."""
    check_regular(path, follow)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(path, st.st_mode)
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


_TEMPORARY = re.compile(r"^\..+\.([0-9]+)\.tmp$")  # JsonFile's: .<name>.<pid>.tmp


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Remove the temporary files JsonFile.save left behind when its process was killed mid-write
    (kill -9, power cut); those of a process still running are kept. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:  # missing or unreadable: nothing of ours to clean
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if not match or entry.is_dir(follow_symlinks=False) or _running(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError as e:
            log.warning("%s: cannot remove this stale temporary file (%s)", entry.path, e.strerror or e)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:  # os.kill(0, ...) would mean our own process group
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: a number no pid can be
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class JsonFile:
    """A small JSON object in the state directory (settings, token, caches, quota ledger).

    Writes go to a temporary file created with mode 0600 and are renamed into place, so a crash or
    power cut mid-write never leaves a half-written file, and no other user can read it."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self, limit: int) -> Any:
        """The stored JSON, strictly, for files that must not be guessed at: FileNotFoundError when there
        is none, OSError for a FIFO or device put there (refused, never waited on), ValueError when it
        is over `limit` bytes or not UTF-8 JSON."""
        raw, _ = read_regular(self.path, limit)
        if len(raw) > limit:
            raise ValueError(f"larger than {limit} bytes")
        return json.loads(raw.decode("utf-8"))  # UnicodeDecodeError and JSONDecodeError are ValueErrors

    def load(self) -> dict:
        """The stored object, or {} when the file is missing or unreadable (a cache can be rebuilt)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.warning("%s: ignoring unreadable state file (%s)", self.path, e)
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())  # else a power cut right after the rename can leave an empty file
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
