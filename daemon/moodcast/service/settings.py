"""The settings commands change at run time (privacy pause, policy, autoplay), kept across restarts.

A `set/paused ON` must still hold after a crash, a watchdog restart, a reboot or a SIGTERM, so
the three settings are written atomically to `<state dir>/settings.json` after every change and
read back before the camera opens. config.toml gives the defaults until a command changes them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from moodcast.labels import POLICIES, Policy
from moodcast.util import JsonFile

log = logging.getLogger("moodcast")
FILE_NAME = "settings.json"
MAX_BYTES = 4096  # the file holds three small values; anything bigger is not ours


@dataclass(frozen=True)
class Settings:
    paused: bool
    policy: Policy
    autoplay: bool


class SettingsFile:
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / FILE_NAME
        self._saved: Settings | None = None
        self.problem = ""  # why the saved settings could not be restored

    def restore(self, defaults: Settings) -> Settings:
        """The saved settings; `defaults` when none were saved. A file that exists but cannot be
        trusted restores a *paused* camera: losing a privacy pause is worse than an extra pause.
        Then `problem` says why, for an error event once the broker is there."""
        try:
            settings = self._read()
        except FileNotFoundError:
            return defaults
        except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            self.problem = (f"{self.path}: unreadable ({e}); starting with the privacy pause ON to be safe "
                            "(send set/paused OFF to resume)")
            log.error(self.problem)
            return Settings(True, defaults.policy, defaults.autoplay)
        self._saved = settings
        log.info("restored settings from %s: paused %s, policy %s, autoplay %s", self.path,
                 "on" if settings.paused else "off", settings.policy, "on" if settings.autoplay else "off")
        return settings

    def saved(self) -> Settings | None:
        """What the file holds, or None when there is none or it cannot be trusted (nothing is logged)."""
        try:
            return self._read()
        except (OSError, ValueError):
            return None

    def _read(self) -> Settings:
        return _validate(JsonFile(self.path).read(MAX_BYTES))  # a FIFO there must not hang the start

    def save(self, settings: Settings) -> None:
        """Write if changed (temporary file, fsync, rename); raises OSError."""
        if settings != self._saved:
            JsonFile(self.path).save(asdict(settings))
            self._saved = settings


def _validate(data: object) -> Settings:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    paused, policy, autoplay = data.get("paused"), data.get("policy"), data.get("autoplay")
    if not isinstance(paused, bool) or not isinstance(autoplay, bool) or policy not in POLICIES:
        raise ValueError("expected paused and autoplay true/false and policy one of " + ", ".join(POLICIES))
    return Settings(paused, Policy(policy), autoplay)
