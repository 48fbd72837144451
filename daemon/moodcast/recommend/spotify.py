"""Spotify Web API calls for moodcast, through spotipy, with every failure turned into one
SpotifyFailure whose `kind` tells the caller what to do next.

spotipy's own urllib3 Retry is kept out: with the default forcelist a 429 is either retried
inside the call (sleeping for Retry-After, possibly an hour) or, with retries=0, surfaces as
"Max Retries" without its Retry-After header. A plain requests.Session lets the 429 reach us
intact and the Backoff decides when to call again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
import spotipy
from spotipy.oauth2 import SpotifyOauthError

from ..config import SpotifyConfig
from .backoff import Backoff
from .spotify_auth import MoodcastOAuth
from .spotify_links import uri_to_url

log = logging.getLogger("moodcast.recommend")

# kinds: auth | premium | forbidden | device | not_found | rate_limited | backoff | server | timeout | network
#        | bad_request
TRANSIENT = {"rate_limited", "backoff", "server", "timeout", "network"}


class SpotifyFailure(Exception):
    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.message, self.status, self.retry_after = kind, message, status, retry_after


@dataclass
class Device:
    id: str
    name: str
    is_active: bool
    type: str = ""  # Speaker, Computer, Smartphone, TV, ... as the Spotify app shows it


def find_device(devices: list[Device], name: str) -> Device | None:
    """The device called `name` as the Spotify app shows it, in any letter case."""
    return next((d for d in devices if d.name.casefold() == name.casefold()), None)


class SpotifyClient:
    def __init__(self, cfg: SpotifyConfig, oauth: MoodcastOAuth, clock=time.monotonic):
        self.cfg, self.oauth = cfg, oauth
        self.sp = spotipy.Spotify(auth_manager=oauth, requests_session=requests.Session(),
                                  requests_timeout=cfg.timeout_s, retries=0, status_retries=0)
        self.sp.prefix = cfg.api_url.rstrip("/") + "/"
        self.backoff = Backoff(cfg.backoff_initial_s, cfg.backoff_max_s, clock)
        self.last_status = "idle"
        self.last_api_ms = 0.0
        self.api_s_total = 0.0  # time spent waiting for Spotify, to report our own latency apart

    # --- the API operations moodcast uses -------------------------------------------------

    def search_playlists(self, query: str) -> list[dict]:
        market = self.cfg.market or None
        result = self._call("search", self.sp.search, q=query, type="playlist", limit=self.cfg.search_limit,
                            market=market)
        items = ((result or {}).get("playlists") or {}).get("items") or []
        return [_playlist_item(p) for p in items if p and p.get("uri") and p.get("name")]  # the API returns null items

    def describe(self, uri: str) -> tuple[str, str] | None:
        """(title, artist or owner) of a playlist/album/artist/track URI."""
        kind = uri.split(":")[1]
        getter = {"playlist": lambda u: self.sp.playlist(u, fields="name,owner(display_name)"),
                  "album": self.sp.album, "artist": self.sp.artist, "track": self.sp.track}[kind]
        info = self._call(f"get {kind}", getter, uri) or {}
        artists = ", ".join(a.get("name", "") for a in info.get("artists") or [])
        by = (info.get("owner") or {}).get("display_name") or artists
        return (info["name"], by or "") if info.get("name") else None

    def playback(self) -> dict | None:
        """The current playback state, or None when nothing is playing anywhere (204)."""
        return self._call("playback state", self.sp.current_playback)

    def devices(self) -> list[Device]:
        result = self._call("devices", self.sp.devices) or {}
        return [Device(d["id"], d.get("name", ""), bool(d.get("is_active")), d.get("type") or "")
                for d in result.get("devices") or [] if d.get("id")]

    def transfer(self, device_id: str) -> None:
        self._call("transfer", self.sp.transfer_playback, device_id, force_play=False)

    def play(self, device_id: str, uri: str) -> None:
        if uri.startswith("spotify:track:"):
            self._call("play", self.sp.start_playback, device_id=device_id, uris=[uri])
        else:
            self._call("play", self.sp.start_playback, device_id=device_id, context_uri=uri)

    def pause(self, device_id: str | None) -> None:
        self._call("pause", self.sp.pause_playback, device_id=device_id)

    def set_volume(self, percent: int, device_id: str) -> None:
        self._call("volume", self.sp.volume, percent, device_id=device_id)

    # --- one call: gate, 401 refresh, timing, classification -------------------------------

    def _call(self, what: str, fn, *args, **kwargs):
        wait = self.backoff.wait_s()
        if wait > 0:
            raise SpotifyFailure("backoff", f"Spotify {what} skipped: waiting {wait:.0f} s after earlier errors",
                                 retry_after=wait)
        start = time.perf_counter()
        try:
            result = self._with_refresh(fn, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every failure becomes a SpotifyFailure
            failure = classify(e, what)
            self._note_failure(failure)
            raise failure from None
        finally:
            self.last_api_ms = (time.perf_counter() - start) * 1000
            self.api_s_total += self.last_api_ms / 1000
        self.backoff.succeed()
        self.last_status = "ok"
        return result

    def _with_refresh(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except spotipy.SpotifyException as e:
            if e.http_status != 401:
                raise
            # The token was revoked or expired early; spotipy only refreshes by the clock.
            log.info("Spotify said 401; refreshing the access token")
            self.oauth.refresh_now()
            return fn(*args, **kwargs)

    def _note_failure(self, failure: SpotifyFailure) -> None:
        if failure.kind == "rate_limited":
            delay = self.backoff.fail(failure.retry_after)
            failure.message += f"; next Spotify call in {delay:.0f} s"
            failure.retry_after = delay
        elif failure.kind in TRANSIENT:
            failure.retry_after = self.backoff.fail()
        self.last_status = failure.kind


def classify(e: Exception, what: str) -> SpotifyFailure:
    if isinstance(e, requests.Timeout):
        return SpotifyFailure("timeout", f"Spotify {what}: no answer within the timeout")
    if isinstance(e, requests.RequestException):
        return SpotifyFailure("network", f"Spotify {what}: network error ({type(e).__name__})")
    if isinstance(e, SpotifyOauthError):
        return SpotifyFailure("auth", f"Spotify authorisation failed ({e}); run `moodcast spotify-auth`")
    if isinstance(e, spotipy.SpotifyException):
        return _classify_http(e, what)
    return SpotifyFailure("server", f"Spotify {what}: unexpected answer ({type(e).__name__}: {e})")


def _classify_http(e: spotipy.SpotifyException, what: str) -> SpotifyFailure:
    status, reason = e.http_status, e.reason or ""
    message = str(e.msg).split("\n", 1)[-1].strip()  # spotipy prefixes the URL
    text = f"Spotify {what}: {status} {message}"
    if status == 401:
        return SpotifyFailure("auth", f"{text}; run `moodcast spotify-auth`", status)
    if status == 403 and (reason == "PREMIUM_REQUIRED" or "premium" in message.lower()):
        return SpotifyFailure("premium", "Spotify Premium is required to control playback", status)
    if status == 404 and ("device" in message.lower() or reason == "NO_ACTIVE_DEVICE"):
        return SpotifyFailure("device", text, status)
    if status == 429:
        return SpotifyFailure("rate_limited", f"Spotify rate limit on {what} (Retry-After "
                              f"{(e.headers or {}).get('Retry-After', '?')} s)", status, _retry_after(e.headers))
    if status >= 500:
        return SpotifyFailure("server", text, status)
    kinds = {403: "forbidden", 404: "not_found"}
    return SpotifyFailure(kinds.get(status, "bad_request"), text, status)


def _retry_after(headers) -> float | None:
    value = (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # absent or an HTTP date: our own backoff applies


def _playlist_item(p: dict) -> dict:
    return {
        "title": p["name"],
        "artist": (p.get("owner") or {}).get("display_name") or "",
        "uri": p["uri"],
        "url": (p.get("external_urls") or {}).get("spotify") or uri_to_url(p["uri"]),
    }

