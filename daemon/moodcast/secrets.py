"""Secrets come from systemd credentials, files or the environment — never from config.toml.

Lookup order for a secret called e.g. `mqtt_password`:
1. `$CREDENTIALS_DIRECTORY/mqtt_password` (systemd `LoadCredential=`),
2. the file named in config.toml (e.g. `[mqtt] password_file`),
3. the environment variable `MOODCAST_MQTT_PASSWORD`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretError(Exception):
    """A secret exists but may not or cannot be used; worded for the user."""


def read_secret(name: str, file: str | os.PathLike | None = None) -> str | None:
    """The secret's value with surrounding whitespace stripped, or None when it is not configured."""
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / name).is_file():
        value = _read_file(Path(cred_dir) / name)
        if value:  # the installer creates empty credentials (systemd needs the files): not set
            return value
    if file:
        return _read_file(Path(file))
    value = os.environ.get(f"MOODCAST_{name.upper()}")
    return value.strip() if value else None


def _read_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & stat.S_IROTH:
            raise SecretError(f"{path}: secret file is world-readable; run: chmod 600 {path}")
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SecretError(f"{path}: secret file does not exist") from None
    except PermissionError:
        raise SecretError(f"{path}: secret file is not readable by this user ({os.getuid()})") from None
