"""Secrets come from systemd credentials, files or the environment — never from config.toml.

Lookup order for a secret called e.g. `mqtt_password`:
1. `$CREDENTIALS_DIRECTORY/mqtt_password` (systemd `LoadCredential=`),
2. the file named in config.toml (e.g. `[mqtt] password_file`),
3. the environment variable `MOODCAST_MQTT_PASSWORD`.

A secret is one line of UTF-8 text of at most MAX_BYTES. A secret file must be a regular file that
only its owner can read; outside the credentials directory a symlink is refused, so a link to,
say, /etc/shadow cannot send that file to the broker as a password.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from moodcast.errors import EX_CONFIG, MoodcastError
from moodcast.util import NotARegularFile, read_regular

MAX_BYTES = 4096  # far above any password, key or token; a 70 KB "password" kills paho's thread


class SecretError(MoodcastError):
    """A secret exists but may not or cannot be used; worded for the user."""

    exit_code = EX_CONFIG


def read_secret(name: str, file: str | os.PathLike | None = None) -> str | None:
    """The secret's value with surrounding whitespace stripped, or None when it is not configured."""
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / name).is_file():
        value = _read_file(Path(cred_dir) / name, follow=True)  # systemd's own directory
        if value:  # the installer creates empty credentials (systemd needs the files): not set
            return value
    if file:
        return _read_file(Path(file), follow=False)
    variable = os.environ.get(f"MOODCAST_{name.upper()}")
    if not variable:
        return None
    return _check_text(f"environment variable MOODCAST_{name.upper()}", variable.encode("utf-8", "surrogateescape"))


def _read_file(path: Path, follow: bool) -> str:
    try:
        data, st = read_regular(path, MAX_BYTES, follow)  # a FIFO or a device is refused, never opened
    except FileNotFoundError:
        raise SecretError(f"{path}: secret file does not exist") from None
    except PermissionError:
        raise SecretError(f"{path}: secret file is not readable by this user ({os.getuid()})") from None
    except NotARegularFile as e:
        raise SecretError(f"{path}: secret file is {e}") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SecretError(f"{path}: secret file is a symbolic link; name the file itself "
                              "(or use a systemd credential)") from None
        raise SecretError(f"{path}: cannot open secret file ({e.strerror})") from None
    if st.st_mode & stat.S_IROTH:
        raise SecretError(f"{path}: secret file is world-readable; run: chmod 600 {path}")
    return _check_text(f"{path}: secret file", data)


def _check_text(where: str, data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise SecretError(f"{where} is larger than {MAX_BYTES} bytes; it must hold the secret alone")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretError(f"{where} is not UTF-8 text") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SecretError(f"{where} must be one line without control characters")
    return text
