"""RecommendationService: the daemon's entry point for music and video recommendations.

The frame loop only puts small messages on a queue; one worker thread does every Spotify and
YouTube call (each with a timeout), so a slow or failing API never delays mood publishing.
The worker sleeps until the next message or the next timer (a playback retry, the end of a
cool-down, the next uplift step).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from ..config import MOODS, Config
from ..payloads import iso
from ..secrets import SecretError, read_secret
from .music import MusicCatalog
from .playback import Outcome, Player, Want
from .policy import POLICIES, History, effective_policy, profile_for, uplift_steps
from .spotify import SpotifyClient
from .spotify_auth import NotConfigured, daemon_oauth
from .youtube import YoutubeClient

log = logging.getLogger("moodcast.recommend")



class RecommendationService:
    """publish(kind, payload): kind "recommendation" and "playback" (retained) or "event"; the MQTT
    layer adds schema and timestamp. publish is called from the worker thread."""

    def __init__(self, config: Config, publish: Callable[[str, dict], None]):
        self._cfg, self._rc, self._publish = config, config.recommendations, publish
        self._policy, self._autoplay = self._rc.policy, self._rc.autoplay
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._away = False                 # touched by the frame loop only
        self._mood: str | None = None      # the rest by the worker only
        self._step = 0
        self._want: Want | None = None
        self._timers: dict[str, float] = {}
        self._history = History(self._rc.variety)
        self._stats_lock = threading.Lock()
        self._counters = {"recommendations": 0, "last_latency_ms": None, "last_own_ms": None,
                          "last_play_latency_ms": None, "last_play_own_ms": None}
        self.spotify = _connect_spotify(config)
        self.youtube = _connect_youtube(config)
        self._catalog = MusicCatalog(self.spotify, config.spotify.search_cache_ttl_s, config.state_dir)
        self._player = Player(self.spotify, config.spotify, self._rc, self._history) if self.spotify else None
        self._phrase_turn: dict[str, int] = {}

    # --- the interface the daemon calls (any thread; never blocks) ------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="moodcast-recommend", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._queue.put(("stop",))
            self._thread.join(timeout)  # a call in flight ends by its own timeout; the thread is a daemon
            self._thread = None

    def on_mood_changed(self, mood: str, confidence: float) -> None:
        """A stable mood from the tracker (also no_face / uncertain); returns at once."""
        self._queue.put(("mood", mood, time.perf_counter()))

    def on_face_presence(self, present: bool, absent_for_s: float) -> None:
        """Called every frame; costs a comparison unless the no-face pause threshold is crossed."""
        away = not present and absent_for_s >= self._rc.no_face_pause_s
        if away != self._away:  # only the crossing is a message; this runs every frame
            self._away = away
            self._queue.put(("away", away, time.perf_counter()))

    def set_policy(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self._policy = policy
        self._queue.put(("refresh", time.perf_counter()))

    def set_autoplay(self, on: bool) -> None:
        self._autoplay = bool(on)
        self._queue.put(("refresh", time.perf_counter()))

    @property
    def policy(self) -> str:
        return self._policy

    @property
    def autoplay(self) -> bool:
        return self._autoplay

    def stats(self) -> dict:
        with self._stats_lock:
            counters = dict(self._counters)
        sp, yt = self.spotify, self.youtube
        return {
            "policy": self._policy, "autoplay": self._autoplay, **counters,
            "spotify_enabled": sp is not None,
            "spotify_last_status": sp.last_status if sp else "disabled",
            "spotify_api_ms": round(sp.last_api_ms, 1) if sp else None,
            "spotify_retry_in_s": round(sp.backoff.wait_s(), 1) if sp else None,
            "youtube_enabled": yt is not None,
            "youtube_calls_today": yt.budget.calls_today if yt else 0,
            "youtube_daily_budget": self._cfg.youtube.daily_budget,
            "youtube_quota_blocked_until": _iso_or_none(yt.budget.blocked_until if yt else None),
            "youtube_api_ms": round(yt.last_api_ms, 1) if yt else None,
            "cache_hits": self._catalog.cache_hits + (yt.cache_hits if yt else 0),
        }

    def run_once(self, mood: str) -> None:
        """Handle one stable mood in the caller's thread (`moodcast recommend`), as the worker would."""
        self._on_mood(mood, time.perf_counter())

    # --- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            messages = self._next_messages()
            for message in messages:
                if message[0] == "stop":
                    return
                try:
                    self._handle(message)
                except Exception:  # noqa: BLE001 - one bad turn must not end recommendations for good
                    log.exception("recommendations: unexpected error handling %s", message[0])

    def _next_messages(self) -> list[tuple]:
        """The next message (or a timer tick) plus whatever else is already waiting, with only the
        newest mood kept: after a slow API call the moods that flickered by meanwhile are stale."""
        timeout = None
        if self._timers:
            timeout = max(0.0, min(self._timers.values()) - time.monotonic())
        try:
            messages = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return [("timer", time.perf_counter())]
        while True:
            try:
                messages.append(self._queue.get_nowait())
            except queue.Empty:
                break
        moods = [m for m in messages if m[0] == "mood"]
        return [m for m in messages if m[0] != "mood" or m is moods[-1]]

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "mood":
            self._on_mood(message[1], message[2])
        elif kind == "refresh" and self._mood:
            self._recommend(message[1])
        elif kind == "away":
            self._on_away(message[1])
        elif kind == "timer":
            self._on_timers(message[1])

    def _on_mood(self, mood: str, t0: float) -> None:
        if mood == "uncertain":
            return  # no information: the last mood's music and plans stand
        if mood not in MOODS:  # no_face: keep what plays, drop what was pending
            self._mood, self._want = None, None
            self._timers.clear()
            return
        if mood == self._mood and not (self._player and self._player.paused_by_us):
            return  # (moods queued together are collapsed, so "sad, no_face, sad" may arrive as just "sad")
        self._mood, self._step = mood, 0
        self._recommend(t0)

    def _on_timers(self, t0: float) -> None:
        now = time.monotonic()
        due = [name for name, at in self._timers.items() if at <= now]
        for name in due:
            del self._timers[name]
        if "uplift" in due and self._mood:
            self._step += 1
            self._recommend(t0)
        elif "play" in due and self._want:
            self._try_play(t0)

    def _on_away(self, away: bool) -> None:
        if away and self._rc.pause_on_no_face and self._player:
            t0, api0 = time.perf_counter(), self._api_s()
            outcome = self._player.pause_if_ours()
            if outcome:
                self._report(outcome, t0, api0)

    # --- one recommendation ----------------------------------------------------------------

    def _recommend(self, t0: float) -> None:
        api0 = self._api_s()
        mood, table = self._mood, self._rc.moods[self._mood]
        policy = effective_policy(self._policy, table)
        if policy == "off":
            self._want = None
            self._timers.clear()
            self._publish_recommendation(mood, policy, [], [], t0, api0, profile=None)
            return
        profile = profile_for(mood, policy, self._step, self._rc)
        music, videos = self._music(profile), self._videos(profile)
        self._publish_recommendation(mood, policy, music, videos, t0, api0, profile)
        self._schedule_uplift(mood, policy)
        self._want = None
        if self._autoplay and self._player and music:
            self._want = Want(mood, profile, music[0]["uri"], self._rc.moods[profile].volume)
            self._try_play(t0, api0)

    def _music(self, profile: str) -> list[dict]:
        result = self._catalog.items(self._rc.moods[profile])
        for failure in result.errors:
            if failure.kind != "backoff":
                self._error("spotify", failure.message)
        return self._history.order(result.items)[: self._rc.music_items]

    def _videos(self, profile: str) -> list[dict]:
        phrases = self._rc.moods[profile].youtube_search
        if not self.youtube or not phrases:
            return []
        turn = self._phrase_turn.get(profile, 0)  # rotate phrases so repeats show other videos
        self._phrase_turn[profile] = turn + 1
        phrase = phrases[turn % len(phrases)]
        result = self.youtube.videos(profile, phrase, phrases)
        if result.error:
            log.warning("%s", result.error)
            self._error("youtube", result.error)
        elif result.note:
            log.info("%s", result.note)
        return result.items

    def _schedule_uplift(self, mood: str, policy: str) -> None:
        self._timers.pop("uplift", None)
        if self._step + 1 < len(uplift_steps(mood, policy, self._rc)):
            self._timers["uplift"] = time.monotonic() + self._rc.uplift_step_s

    def _publish_recommendation(self, mood, policy, music, videos, t0, api0, profile) -> None:
        self._publish("recommendation", {
            "mood": mood, "policy": policy, "music": music, "videos": videos,
            "generated_at": iso(time.time()),
        })
        total_ms, api_ms = (time.perf_counter() - t0) * 1000, (self._api_s() - api0) * 1000
        self._publish("event", {"type": "recommendation_ready", "mood": mood, "policy": policy, "profile": profile,
                                "music": len(music), "videos": len(videos), "latency_ms": round(total_ms, 1),
                                "api_ms": round(api_ms, 1)})
        with self._stats_lock:
            self._counters["recommendations"] += 1
            self._counters["last_latency_ms"] = round(total_ms, 1)
            self._counters["last_own_ms"] = round(total_ms - api_ms, 1)
        log.info("recommendation for %s (%s%s): %d music, %d videos in %.0f ms (%.0f ms waiting for APIs)",
                 mood, policy, f", {profile}" if profile and profile != mood else "", len(music), len(videos),
                 total_ms, api_ms)

    # --- playback ----------------------------------------------------------------------------

    def _try_play(self, t0: float, api0: float | None = None) -> None:
        """Attempt the Want; latency counts from `t0` (the mood change or timer) and API time from `api0`."""
        api0 = self._api_s() if api0 is None else api0
        outcome = self._player.attempt(self._want)
        self._report(outcome, t0, api0)
        if outcome.retry_in is not None:
            self._timers["play"] = time.monotonic() + outcome.retry_in
        else:
            self._want = None

    def _report(self, outcome: Outcome, t0: float, api0: float) -> None:
        self._publish("playback", outcome.payload())
        total_ms, api_ms = (time.perf_counter() - t0) * 1000, (self._api_s() - api0) * 1000
        if outcome.error:
            self._error("spotify", outcome.message)
        else:
            self._publish("event", {"type": "playback", **outcome.payload(), "latency_ms": round(total_ms, 1),
                                    "api_ms": round(api_ms, 1)})
        if outcome.action == "play" and outcome.ok:
            with self._stats_lock:
                self._counters["last_play_latency_ms"] = round(total_ms, 1)
                self._counters["last_play_own_ms"] = round(total_ms - api_ms, 1)

    def _error(self, component: str, message: str) -> None:
        self._publish("event", {"type": "error", "component": component, "message": message})

    def _api_s(self) -> float:
        return (self.spotify.api_s_total if self.spotify else 0.0) + (self.youtube.api_s_total if self.youtube else 0.0)


def _connect_spotify(config: Config) -> SpotifyClient | None:
    if not config.spotify.enabled:
        log.info("Spotify: disabled in the config")
        return None
    try:
        return SpotifyClient(config.spotify, daemon_oauth(config))
    except NotConfigured as e:
        log.info("Spotify: off, %s", e)
        return None
    except SecretError as e:  # configured but unusable: worth a warning
        log.warning("Spotify: off, %s", e)
        return None


def _connect_youtube(config: Config) -> YoutubeClient | None:
    if not config.youtube.enabled:
        log.info("YouTube: disabled in the config")
        return None
    try:
        key = read_secret("youtube_api_key", config.youtube.api_key_file or None)
    except SecretError as e:
        log.warning("YouTube: off, %s", e)
        return None
    if not key:
        log.info("YouTube: off, no API key (credential youtube_api_key, [youtube] api_key_file "
                 "or MOODCAST_YOUTUBE_API_KEY)")
        return None
    return YoutubeClient(config.youtube, key, config.state_dir)


def _iso_or_none(epoch: float | None) -> str | None:
    return None if epoch is None else iso(epoch)
