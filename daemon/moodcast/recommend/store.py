"""Small JSON files in the state directory (token, caches, quota ledger).

Writes go to a temporary file created with mode 0600 and are renamed into place, so a crash or
power cut mid-write never leaves a half-written token or ledger, and no other user can read them.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger("moodcast.recommend")


class JsonFile:
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


def tagged(items: list[dict], source: str) -> list[dict]:
    """Copies of cached or found items with their `source` ("cache", "search") for the recommendation payload."""
    return [{**item, "source": source} for item in items]
