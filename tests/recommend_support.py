"""Shared pieces for tests/test_recommend_*.py (the fake servers are fixtures in conftest.py): a config pointing at
them, and a publish() that checks every payload against the MQTT schemas and lets tests wait."""

from __future__ import annotations

import threading
import time

import jsonschema

from moodcast import config as config_module
from moodcast.mqtt import payloads
from tests.fake_spotify import FakeSpotify, write_token
from tests.fake_youtube import FakeYoutube

SCHEMA_FOR = {"recommendation": "recommendation", "playback": "playback", "event": "event"}


def make_config(tmp_path, spotify: FakeSpotify | None = None, youtube: FakeYoutube | None = None,
                authorised: bool = True, overrides: dict | None = None) -> config_module.Config:
    """A Config whose Spotify/YouTube base URLs point at the fakes (or that has no credentials)."""
    raw: dict = {"state": {"dir": str(tmp_path / "state")},
                 "recommendations": {"cooldown_s": 0.0, "policy": "match", "autoplay": True}}
    if spotify:
        secret = tmp_path / "spotify_secret"
        secret.write_text(spotify.client_secret + "\n")
        secret.chmod(0o600)
        raw["spotify"] = {"client_id": spotify.client_id, "client_secret_file": str(secret),
                          "api_url": f"{spotify.url}/v1/", "accounts_url": spotify.url, "timeout_s": 1.0,
                          "device_name": "Kitchen", "device_retry_s": 0.05, "backoff_initial_s": 0.05,
                          "redirect_uri": spotify.redirect_uri}
    if youtube:
        key = tmp_path / "youtube_key"
        key.write_text(youtube.api_key)
        key.chmod(0o600)
        raw["youtube"] = {"api_key_file": str(key), "api_url": f"{youtube.url}/", "timeout_s": 1.0}
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    cfg = config_module.parse(raw)
    if spotify and authorised:
        write_token(cfg.state_dir / "spotify_token.json", spotify.token_info())
    return cfg


class Published:
    """publish(kind, payload) for RecommendationService: validates, records, wakes waiters."""

    def __init__(self, validate: bool = True):
        self.items: list[tuple[float, str, dict]] = []
        self._cond = threading.Condition()
        self._validate = validate  # off only where publishing time is measured

    def __call__(self, kind: str, payload: dict) -> None:
        assert "schema" not in payload and "timestamp" not in payload
        if self._validate:
            jsonschema.validate(payloads.stamp(payload), payloads.load_schema(SCHEMA_FOR[kind]))
        with self._cond:
            self.items.append((time.perf_counter(), kind, payload))
            self._cond.notify_all()

    def of(self, kind: str, type: str | None = None) -> list[dict]:
        with self._cond:
            return [p for _, k, p in self.items if k == kind and (type is None or p.get("type") == type)]

    def wait_for(self, kind: str, pred=lambda p: True, type: str | None = None, timeout: float = 5.0,
                 after: int = 0) -> dict:
        """The first payload of `kind` (index >= after among that kind) matching `pred`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [p for p in self.of(kind, type)[after:] if pred(p)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind} {type or ''} payload in {timeout} s; got {self.items}")
                self._cond.wait(left)

    def time_of(self, payload: dict) -> float:
        with self._cond:
            return next(t for t, _, p in self.items if p is payload)
