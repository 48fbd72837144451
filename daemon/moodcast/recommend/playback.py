"""Spotify Connect playback decisions: cool-down, the user's own music, device choice, pausing.

Every attempt ends in an Outcome that the service publishes on the playback topic and as an
event; `retry_in` asks the service to try the same Want again later (cool-down, a missing
device, a rate limit). Nothing here sleeps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..config import RecommendationsConfig, SpotifyConfig
from .policy import History
from .spotify import Device, SpotifyClient, SpotifyFailure, find_device

log = logging.getLogger("moodcast.recommend")

_MAX_FAILURES = 6  # per Want; a mood change starts a new Want


@dataclass
class Want:
    """Music moodcast would like to be playing."""
    mood: str
    profile: str
    uri: str
    volume: int
    failures: int = 0


@dataclass
class Outcome:
    action: str          # play | pause | none
    ok: bool
    message: str
    device: str | None = None
    context_uri: str | None = None
    retry_in: float | None = None
    error: bool = False  # publish an error event

    def payload(self) -> dict:
        return {"action": self.action, "ok": self.ok, "device": self.device, "context_uri": self.context_uri,
                "message": self.message}


class Player:
    def __init__(self, spotify: SpotifyClient, scfg: SpotifyConfig, rc: RecommendationsConfig,
                 history: History, clock=time.monotonic):
        self._sp, self._scfg, self._rc, self._history, self._clock = spotify, scfg, rc, history, clock
        self.current: Want | None = None     # what moodcast last started
        self.playing_ours = False
        self.device: Device | None = None
        self._last_change = None              # monotonic time of the last playback change
        self._paused_by_us = False
        self._manual_since = None
        self._premium_block_until = 0.0

    # --- starting music ------------------------------------------------------------------

    def attempt(self, want: Want) -> Outcome:
        early = self._reason_not_to_call(want)
        if early:
            return early
        try:
            manual = self._manual_outcome(want) if self._rc.respect_manual else None
            if manual:
                return manual
            device = self._choose_device(allow_fallback=want.failures >= self._scfg.device_retries)
            if not device.is_active:
                self._sp.transfer(device.id)
            self._sp.play(device.id, want.uri)
            if want.volume >= 0:
                self._sp.set_volume(want.volume, device.id)
        except SpotifyFailure as f:
            return self._failed(want, f)
        return self._started(want, device)

    def _reason_not_to_call(self, want: Want) -> Outcome | None:
        now = self._clock()
        if now < self._premium_block_until:
            return Outcome("none", False, "Spotify Premium is required to control playback")
        if self.playing_ours and self.current and self.current.profile == want.profile:
            return Outcome("none", True, f"already playing {want.profile} music", self._name(),
                           self.current.uri)
        wait = self.cooldown_left()
        if wait > 0:
            return Outcome("none", True, f"cool-down: changing music in {wait:.0f} s if the mood holds",
                           self._name(), self.current.uri if self.current else None, retry_in=wait)
        if want.failures >= _MAX_FAILURES:
            return Outcome("play", False, f"gave up on {want.uri} after {want.failures} failed attempts", error=True)
        return None

    @property
    def paused_by_us(self) -> bool:
        return self._paused_by_us

    def cooldown_left(self) -> float:
        if self._last_change is None or self._paused_by_us:
            return 0.0  # after our own no-face pause a returning person gets music at once
        return max(0.0, self._last_change + self._rc.cooldown_s - self._clock())

    def _manual_outcome(self, want: Want) -> Outcome | None:
        """An Outcome holding back while the user plays their own music, else None."""
        state = self._sp.playback()
        playing = _playing_uri(state)
        if playing is None or (self.current and playing == self.current.uri):
            self._manual_since = None
            return None
        now = self._clock()
        since = self._manual_since if self._manual_since is not None else now
        self._manual_since = since
        left = since + self._rc.manual_window_s - now
        if left <= 0:
            return None
        self.playing_ours = False
        return Outcome("none", True, f"user is playing {playing}; not overriding for {left:.0f} s or until they stop",
                       ((state or {}).get("device") or {}).get("name"), playing,
                       retry_in=min(self._rc.manual_check_s, left))

    def _choose_device(self, allow_fallback: bool) -> Device:
        devices = self._sp.devices()
        wanted = self._scfg.device_name
        if wanted:
            named = find_device(devices, wanted)
            if named:
                return named
            if not (allow_fallback and self._scfg.device_fallback):
                raise SpotifyFailure("device", f'Spotify device "{wanted}" not found (idle receivers vanish)')
        active = [d for d in devices if d.is_active]
        if active or len(devices) == 1:
            return (active or devices)[0]
        raise SpotifyFailure("device", "no active Spotify device" + (f' and "{wanted}" not found' if wanted else ""))

    def _started(self, want: Want, device: Device) -> Outcome:
        self.current, self.device, self.playing_ours = want, device, True
        self._last_change, self._paused_by_us, self._manual_since = self._clock(), False, None
        self._history.add(want.uri)
        log.info("Spotify: playing %s (%s music for %s) on %s", want.uri, want.profile, want.mood, device.name)
        return Outcome("play", True, f"playing {want.profile} music for {want.mood}", device.name, want.uri)

    def _failed(self, want: Want, f: SpotifyFailure) -> Outcome:
        want.failures += 1
        retry_in = None
        if f.kind == "device" and want.failures <= self._scfg.device_retries:
            retry_in = self._scfg.device_retry_s
            f.message += f"; looking again in {retry_in:g} s ({want.failures}/{self._scfg.device_retries})"
        elif f.kind in ("rate_limited", "backoff", "server", "timeout", "network"):
            retry_in = f.retry_after or self._sp.backoff.wait_s() or self._scfg.backoff_initial_s
        elif f.kind == "premium":
            self._premium_block_until = self._clock() + self._scfg.backoff_max_s
        (log.info if f.kind == "backoff" else log.warning)("Spotify: play %s failed: %s", want.uri, f.message)
        return Outcome("play", False, f.message, self._name(), want.uri, retry_in=retry_in, error=f.kind != "backoff")

    # --- pausing when nobody is there ----------------------------------------------------

    def pause_if_ours(self) -> Outcome | None:
        if not self.playing_ours or not self.current:
            return None
        try:
            playing = _playing_uri(self._sp.playback())
            if playing != self.current.uri:
                self.playing_ours = False  # the user took over (or stopped): leave it alone
                why = "nothing is playing" if playing is None else "the music is not moodcast's"
                return Outcome("none", True, f"nobody there, but {why}: not pausing", self._name(), playing)
            self._sp.pause(self.device.id if self.device else None)
        except SpotifyFailure as f:
            return Outcome("pause", False, f.message, self._name(), self.current.uri, error=f.kind != "backoff")
        self.playing_ours, self._paused_by_us = False, True
        log.info("Spotify: paused %s (nobody seen for %g s)", self.current.uri, self._rc.no_face_pause_s)
        return Outcome("pause", True, f"paused: nobody seen for {self._rc.no_face_pause_s:g} s", self._name(),
                       self.current.uri)

    def _name(self) -> str | None:
        return self.device.name if self.device else None


def _playing_uri(state: dict | None) -> str | None:
    """The context (or track) URI that is audibly playing, else None."""
    if not state or not state.get("is_playing"):
        return None
    return (state.get("context") or {}).get("uri") or (state.get("item") or {}).get("uri")
