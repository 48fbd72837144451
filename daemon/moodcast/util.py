"""Two small helpers several parts share: closed sets of words (TextEnum) and private JSON files
written atomically (JsonFile). They import nothing of moodcast's, so any module may use them."""

from __future__ import annotations

import json
import logging
import os
from enum import Enum
from pathlib import Path

log = logging.getLogger("moodcast")


class TextEnum(str, Enum):
    """A closed set of words: a str, so a member is published, compared, formatted and written to
    JSON as its value ("uplift", never "Policy.UPLIFT"), on every Python from 3.10 on."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class JsonFile:
    """A small JSON object in the state directory (settings, token, caches, quota ledger).

    Writes go to a temporary file created with mode 0600 and are renamed into place, so a crash or
    power cut mid-write never leaves a half-written file, and no other user can read it."""

    def __init__(self, path: Path):
        self.path = Path(path)

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
