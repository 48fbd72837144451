"""Where recommendations come from: the music of a table (your Spotify links, then search results,
in the History's order) and YouTube videos (phrases in turn), with what the stats say about them.

Runs on the recommendation worker; failures are reported through `on_error(component, message)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..logs import RateLimitedLog
from ..mqtt.payloads import iso
from .music import MusicCatalog
from .policy import History
from .spotify import SpotifyClient
from .youtube import YoutubeClient

log = logging.getLogger("moodcast.recommend")


class Sources:
    def __init__(self, config: Config, spotify: SpotifyClient | None, youtube: YoutubeClient | None,
                 history: History, on_error: Callable[[str, str], None]):
        self._cfg, self._rc = config, config.recommendations
        self.spotify, self.youtube = spotify, youtube
        self._history, self._error = history, on_error
        self._catalog = MusicCatalog(spotify, config.spotify.search_cache_ttl_s, config.state_dir)
        self._phrase_turn: dict[str, int] = {}
        self._limited = RateLimitedLog(log, interval_s=60.0, burst=3)  # asked for per recommendation, see service

    def music(self, profile: str) -> list[dict]:
        result = self._catalog.items(self._rc.moods[profile])
        for failure in result.errors:
            if failure.kind != "backoff":
                self._error("spotify", failure.message)
        return self._history.order(result.items)[: self._rc.music_items]

    def videos(self, profile: str) -> list[dict]:
        phrases = self._rc.moods[profile].youtube_search
        if not self.youtube or not phrases:
            return []
        turn = self._phrase_turn.get(profile, 0)  # rotate phrases so repeats show other videos
        self._phrase_turn[profile] = turn + 1
        phrase = phrases[turn % len(phrases)]
        result = self.youtube.videos(profile, phrase, phrases)
        if result.error:
            self._limited.warning("youtube error", "%s", result.error)
            self._error("youtube", result.error)
        elif result.note:
            self._limited.info("youtube note", "%s", result.note)
        return result.items

    def api_s(self) -> float:
        """Seconds spent waiting for the APIs so far (for latency minus API time)."""
        return (self.spotify.api_s_total if self.spotify else 0.0) + (self.youtube.api_s_total if self.youtube else 0.0)

    def stats(self) -> dict[str, Any]:
        sp, yt = self.spotify, self.youtube
        blocked_until = yt.budget.blocked_until if yt else None
        return {
            "spotify_enabled": sp is not None,
            "spotify_last_status": sp.last_status if sp else "disabled",
            "spotify_api_ms": round(sp.last_api_ms, 1) if sp else None,
            "spotify_retry_in_s": round(sp.backoff.wait_s(), 1) if sp else None,
            "youtube_enabled": yt is not None,
            "youtube_calls_today": yt.budget.calls_today if yt else 0,
            "youtube_daily_budget": self._cfg.youtube.daily_budget,
            "youtube_quota_blocked_until": iso(blocked_until) if blocked_until is not None else None,
            "youtube_api_ms": round(yt.last_api_ms, 1) if yt else None,
            "cache_hits": self._catalog.cache_hits + (yt.cache_hits if yt else 0),
        }
