"""`moodcast check-config --online`: beyond a valid configuration, try each configured service once.

The broker (name, TCP, TLS, login), Spotify (token refresh, the speaker online now) and YouTube
(one 1-unit request with the key) are tried side by side, each within ATTEMPT_TIMEOUT_S, and each
gets one line saying what worked or why not. A service that is not configured is "off", not a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from moodcast.config import Config
from moodcast.errors import EX_CONFIG, EX_UNAVAILABLE, MoodcastError, exit_code
from moodcast.secrets import read_secret
from moodcast.util import TextEnum

ATTEMPT_TIMEOUT_S = 5.0


class Reach(TextEnum):
    OK = "ok"
    OFF = "off"
    CAVEAT = "warning"  # works, with something to know (the speaker is not online right now)
    UNAVAILABLE = "unreachable"  # exit 69
    CONFIG = "error"  # exit 78


@dataclass(frozen=True)
class Attempt:
    service: str  # as in check-config's summary: mqtt, spotify, youtube
    reach: Reach
    text: str

    def line(self) -> str:
        return f"  {self.service:<8} {self.reach}: {self.text}"


def attempt_all(cfg: Config) -> list[Attempt]:
    tries: dict[str, Callable[[Config], tuple[Reach, str]]] = {
        "mqtt": _broker, "spotify": _spotify, "youtube": _youtube}
    with ThreadPoolExecutor(len(tries)) as pool:
        running = {name: pool.submit(_attempt, fn, cfg) for name, fn in tries.items()}
        return [Attempt(name, *future.result()) for name, future in running.items()]


def online_exit_code(attempts: list[Attempt]) -> int:
    """78 when the configuration must change, else 69 when a service cannot be reached now, else 0."""
    reaches = {a.reach for a in attempts}
    return EX_CONFIG if Reach.CONFIG in reaches else EX_UNAVAILABLE if Reach.UNAVAILABLE in reaches else 0


def _attempt(fn: Callable[[Config], tuple[Reach, str]], cfg: Config) -> tuple[Reach, str]:
    try:
        return fn(cfg)
    except MoodcastError as e:  # ConfigError, SecretError, ServiceUnavailable: worded for the user
        return (Reach.UNAVAILABLE if exit_code(e) == EX_UNAVAILABLE else Reach.CONFIG), str(e)


def _broker(cfg: Config) -> tuple[Reach, str]:
    from moodcast.mqtt.probe import try_broker

    if not cfg.mqtt.enabled:
        return Reach.OFF, "[mqtt] enabled = false"
    return Reach.OK, try_broker(cfg.mqtt, f"moodcast-check-{cfg.device_id}", ATTEMPT_TIMEOUT_S)


def _spotify(cfg: Config) -> tuple[Reach, str]:
    from moodcast.recommend.probe import try_spotify

    s = cfg.spotify
    if not s.enabled or not (s.client_id or read_secret("spotify_client_secret", s.client_secret_file or None)):
        return Reach.OFF, "not configured ([spotify] client_id)"
    quick = replace(cfg, spotify=replace(s, timeout_s=min(s.timeout_s, ATTEMPT_TIMEOUT_S)))
    done, caveat = try_spotify(quick)
    return (Reach.CAVEAT, f"{done}; but {caveat}") if caveat else (Reach.OK, done)


def _youtube(cfg: Config) -> tuple[Reach, str]:
    from moodcast.recommend.probe import try_youtube

    y = cfg.youtube
    key = y.enabled and read_secret("youtube_api_key", y.api_key_file or None)
    if not key:
        return Reach.OFF, "no API key"
    quick = replace(cfg, youtube=replace(y, timeout_s=min(y.timeout_s, ATTEMPT_TIMEOUT_S)))
    return Reach.OK, try_youtube(quick, key)
