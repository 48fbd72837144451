"""RecommendationService: the daemon's entry point for music and video recommendations.

The frame loop only puts small messages on a queue; one worker thread does every Spotify and
YouTube call (each with a timeout), so a slow or failing API never delays mood publishing.
The worker sleeps until the next message or the next timer (a playback retry, the end of a
cool-down, the next uplift step).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..config import Config
from ..labels import MOODS, POLICIES, Policy
from ..logs import RateLimitedLog
from ..mqtt.payloads import Event, error_event, iso
from ..secrets import SecretError, read_secret
from .playback import Outcome, Player, Want
from .policy import History, effective_policy, profile_for, uplift_steps
from .sources import Sources
from .spotify import SpotifyClient
from .spotify_auth import NotConfigured, daemon_oauth
from .worker import (
    AwayMessage,
    Counters,
    MoodMessage,
    RefreshMessage,
    StopMessage,
    TimerMessage,
    WorkerInbox,
    WorkerMessage,
)
from .youtube import YoutubeClient

log = logging.getLogger("moodcast.recommend")


class RecommendationService:
    """publish(kind, payload): kind "recommendation" and "playback" (retained) or "event"; the MQTT
    layer adds schema and timestamp. publish is called from the worker thread."""

    def __init__(self, config: Config, publish: Callable[[str, dict], None]):
        self._cfg, self._rc, self._publish = config, config.recommendations, publish
        self._policy, self._autoplay = self._rc.policy, self._rc.autoplay
        self._queue = WorkerInbox()
        self._thread: threading.Thread | None = None
        self._away = False                 # touched by the frame loop only
        self._mood: str | None = None      # the rest by the worker only
        self._step = 0
        self._want: Want | None = None
        self._timers: dict[str, float] = {}
        self._history = History(self._rc.variety)
        self._counters = Counters()
        self._limited = RateLimitedLog(log, interval_s=60.0, burst=10)
        self.spotify = _connect_spotify(config)
        self.youtube = _connect_youtube(config)
        self._sources = Sources(config, self.spotify, self.youtube, self._history, self._error)
        self._player = Player(self.spotify, config.spotify, self._rc, self._history) if self.spotify else None

    # --- the interface the daemon calls (any thread; never blocks) ------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="moodcast-recommend", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._queue.put(StopMessage())
            self._thread.join(timeout)  # a call in flight ends by its own timeout; the thread is a daemon
            self._thread = None

    def on_mood_changed(self, mood: str, confidence: float) -> None:
        """A stable mood from the tracker (also no_face / uncertain); returns at once."""
        self._queue.put(MoodMessage(mood, time.perf_counter()))

    def on_face_presence(self, present: bool, absent_for_s: float) -> None:
        """Called every frame; costs a comparison unless the no-face pause threshold is crossed."""
        away = not present and absent_for_s >= self._rc.no_face_pause_s
        if away != self._away:  # only the crossing is a message; this runs every frame
            self._away = away
            self._queue.put(AwayMessage(away, time.perf_counter()))

    def set_policy(self, policy: Policy | str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self._policy = Policy(policy)
        self._queue.put(RefreshMessage(time.perf_counter()))

    def set_autoplay(self, on: bool) -> None:
        self._autoplay = bool(on)
        self._queue.put(RefreshMessage(time.perf_counter()))

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def autoplay(self) -> bool:
        return self._autoplay

    def stats(self) -> dict:
        return {"policy": str(self._policy), "autoplay": self._autoplay, **self._counters.snapshot(),
                **self._sources.stats()}

    def run_once(self, mood: str) -> None:
        """Handle one stable mood in the caller's thread (`moodcast recommend`), as the worker would."""
        self._on_mood(mood, time.perf_counter())

    # --- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            messages = self._next_messages()
            for message in messages:
                if isinstance(message, StopMessage):
                    return
                try:
                    self._handle(message)
                except Exception:  # noqa: BLE001 - one bad turn must not end recommendations for good
                    log.exception("recommendations: unexpected error handling %s", type(message).__name__)

    def _next_messages(self) -> list[WorkerMessage]:
        """Waits for the next message, or until the first timer is due."""
        timeout = max(0.0, min(self._timers.values()) - time.monotonic()) if self._timers else None
        return self._queue.next_batch(timeout)

    def _handle(self, message: WorkerMessage) -> None:
        if isinstance(message, MoodMessage):
            self._on_mood(message.mood, message.t0)
        elif isinstance(message, RefreshMessage) and self._mood:
            self._recommend(message.t0)
        elif isinstance(message, AwayMessage):
            self._on_away(message.away)
        elif isinstance(message, TimerMessage):
            self._on_timers(message.t0)

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
            t0, api0 = time.perf_counter(), self._sources.api_s()
            outcome = self._player.pause_if_ours()
            if outcome:
                self._report(outcome, t0, api0)

    # --- one recommendation ----------------------------------------------------------------

    def _recommend(self, t0: float) -> None:
        api0 = self._sources.api_s()
        mood = self._mood
        assert mood is not None, "only called while a mood is current"
        table = self._rc.moods[mood]
        policy = effective_policy(self._policy, table)
        if policy is Policy.OFF:
            self._want = None
            self._timers.clear()
            self._publish_recommendation(mood, policy, [], [], t0, api0, profile=None)
            return
        profile = profile_for(mood, policy, self._step, self._rc)
        music, videos = self._sources.music(profile), self._sources.videos(profile)
        self._publish_recommendation(mood, policy, music, videos, t0, api0, profile)
        self._schedule_uplift(mood, policy)
        self._want = None
        if self._autoplay and self._player and music:
            self._want = Want(mood, profile, music[0]["uri"], self._rc.moods[profile].volume)
            self._try_play(t0, api0)

    def _schedule_uplift(self, mood: str, policy: Policy) -> None:
        self._timers.pop("uplift", None)
        if self._step + 1 < len(uplift_steps(mood, policy, self._rc)):
            self._timers["uplift"] = time.monotonic() + self._rc.uplift_step_s

    def _publish_recommendation(self, mood: str, policy: Policy, music: list[dict], videos: list[dict], t0: float,
                                api0: float, profile: str | None) -> None:
        self._publish("recommendation", {
            "mood": mood, "policy": str(policy), "music": music, "videos": videos,
            "generated_at": iso(time.time()),
        })
        total_ms, api_ms = (time.perf_counter() - t0) * 1000, (self._sources.api_s() - api0) * 1000
        self._send(Event("recommendation_ready", {
            "mood": mood, "policy": str(policy), "profile": profile, "music": len(music), "videos": len(videos),
            "latency_ms": round(total_ms, 1), "api_ms": round(api_ms, 1)}))
        self._counters.recommended(total_ms, api_ms)
        # a flood of policy/autoplay commands asks for one each batch: rate-limited like every remote trigger
        self._limited.info("recommendation", "recommendation for %s (%s%s): %d music, %d videos in %.0f ms "
                           "(%.0f ms waiting for APIs)", mood, policy,
                           f", {profile}" if profile and profile != mood else "", len(music), len(videos),
                           total_ms, api_ms)

    # --- playback ----------------------------------------------------------------------------

    def _try_play(self, t0: float, api0: float | None = None) -> None:
        """Attempt the Want; latency counts from `t0` (the mood change or timer) and API time from `api0`."""
        assert self._player is not None and self._want is not None, "only called with a player and a want"
        api0 = self._sources.api_s() if api0 is None else api0
        outcome = self._player.attempt(self._want)
        self._report(outcome, t0, api0)
        if outcome.retry_in is not None:
            self._timers["play"] = time.monotonic() + outcome.retry_in
        else:
            self._want = None

    def _report(self, outcome: Outcome, t0: float, api0: float) -> None:
        self._publish("playback", outcome.payload())
        total_ms, api_ms = (time.perf_counter() - t0) * 1000, (self._sources.api_s() - api0) * 1000
        if outcome.error:
            self._error("spotify", outcome.message)
        else:
            self._send(Event("playback", {**outcome.payload(), "latency_ms": round(total_ms, 1),
                                          "api_ms": round(api_ms, 1)}))
        if outcome.action == "play" and outcome.ok:
            self._counters.played(total_ms, api_ms)

    def _error(self, component: str, message: str) -> None:
        self._send(error_event(component, message))

    def _send(self, event: Event) -> None:
        self._publish(event.kind, event.body())


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
