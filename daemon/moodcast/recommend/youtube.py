"""YouTube video suggestions per mood: search.list through google-api-python-client, a disk
cache per mood and phrase, and a daily budget so the default quota (10,000 units, 100 per
search) is never exceeded.

Cached results are served first while fresh; when the API may not or cannot be called
(budget spent, quotaExceeded, errors) stale cache entries still beat an empty list.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httplib2
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from ..config import YoutubeConfig
from ..util import JsonFile
from .backoff import Backoff
from .quota import DailyBudget
from .store import tagged

log = logging.getLogger("moodcast.recommend")

QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
# Errors other than quota: searches are precious and cached, so wait long before trying again.
_BACKOFF_INITIAL_S, _BACKOFF_MAX_S = 60.0, 3600.0


@dataclass
class VideoResult:
    items: list[dict] = field(default_factory=list)
    error: str | None = None   # worth an error event
    note: str | None = None    # why the API was not asked (budget, quota), for the log


class YoutubeClient:
    def __init__(self, cfg: YoutubeConfig, api_key: str, state_dir: Path, clock=time.time):
        self.cfg, self._clock = cfg, clock
        self._service = build("youtube", "v3", developerKey=api_key, http=httplib2.Http(timeout=cfg.timeout_s),
                              client_options={"api_endpoint": cfg.api_url}, static_discovery=True,
                              cache_discovery=False)
        self.budget = DailyBudget(state_dir / "youtube_quota.json", cfg.daily_budget, clock)
        self._cache = JsonFile(state_dir / "youtube_cache.json")
        self.backoff = Backoff(_BACKOFF_INITIAL_S, _BACKOFF_MAX_S)
        self.last_api_ms = 0.0
        self.api_s_total = 0.0
        self.cache_hits = 0

    def check_key(self) -> None:
        """The cheapest call that proves the key works: i18nRegions.list, 1 quota unit (a search costs 100;
        the daily budget counts searches only). Raises HttpError, OSError or HttpLib2Error."""
        self._service.i18nRegions().list(part="snippet").execute(num_retries=0)

    def videos(self, profile: str, phrase: str, fallback_phrases: list[str]) -> VideoResult:
        """Videos for `phrase` (one of the profile's phrases); stale or sibling-phrase cache on failure."""
        cache = self._cache.load()
        entry = cache.get(_key(profile, phrase))
        if entry and self._clock() - entry["fetched_at"] < self.cfg.cache_ttl_s:
            self.cache_hits += 1
            return VideoResult(tagged(entry["items"], "cache"))
        result = self._search_or_why(phrase)
        if isinstance(result, list):
            cache[_key(profile, phrase)] = {"fetched_at": self._clock(), "items": result}
            self._cache.save(cache)
            return VideoResult(tagged(result, "search"))
        stale = _any_cached(cache, profile, [phrase, *fallback_phrases])
        return VideoResult(tagged(stale, "cache"), **result)

    def _search_or_why(self, phrase: str) -> list[dict] | dict:
        """The API's videos, or {"error": ...} / {"note": ...} saying why there are none."""
        why = self.budget.refusal()
        if why:
            return {"note": why}
        if self.backoff.wait_s() > 0:
            return {"note": f"YouTube: waiting {self.backoff.wait_s():.0f} s after an error"}
        self.budget.spend()  # before the call: a request that times out may still be charged
        start = time.perf_counter()
        try:
            response = self._request(phrase).execute(num_retries=0)
        except HttpError as e:
            return {"error": self._http_error(e)}
        except (OSError, httplib2.HttpLib2Error) as e:  # timeouts, refused connections, DNS
            self.backoff.fail()
            return {"error": f"YouTube search failed: {type(e).__name__}: {e}"}
        finally:
            self.last_api_ms = (time.perf_counter() - start) * 1000
            self.api_s_total += self.last_api_ms / 1000
        self.backoff.succeed()
        return [v for v in map(_video_item, response.get("items") or []) if v]

    def _request(self, phrase: str):
        params = {"part": "snippet", "q": phrase, "type": "video", "maxResults": self.cfg.max_results,
                  "safeSearch": self.cfg.safe_search, "videoEmbeddable": "true"}
        if self.cfg.music_only:
            params["videoCategoryId"] = "10"
        if self.cfg.region_code:
            params["regionCode"] = self.cfg.region_code
        if self.cfg.relevance_language:
            params["relevanceLanguage"] = self.cfg.relevance_language
        return self._service.search().list(**params)

    def _http_error(self, e: HttpError) -> str:
        reason = error_reason(e)
        if e.status_code == 403 and reason in QUOTA_REASONS:
            until = self.budget.block_until_reset()
            return (f"YouTube quota exceeded ({reason}); serving cached videos until the reset at "
                    f"{time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(until))}")
        self.backoff.fail()
        return f"YouTube search failed: {e.status_code} {reason or ''} {e.reason}".strip()


def error_reason(e: HttpError) -> str | None:
    """errors[0].reason of a Google error body, e.g. quotaExceeded."""
    try:
        return json.loads(e.content.decode("utf-8"))["error"]["errors"][0]["reason"]
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError):
        return None


def _video_item(result: dict) -> dict | None:
    video_id = (result.get("id") or {}).get("videoId") or ""
    snippet = result.get("snippet") or {}
    title = html.unescape(snippet.get("title") or "")  # the API HTML-escapes titles
    if not _VIDEO_ID.match(video_id) or not title:
        return None
    return {"title": title, "channel": html.unescape(snippet.get("channelTitle") or ""), "video_id": video_id,
            "url": f"https://www.youtube.com/watch?v={video_id}"}


def _key(profile: str, phrase: str) -> str:
    return f"{profile}|{phrase}"


def _any_cached(cache: dict, profile: str, phrases: list[str]) -> list[dict]:
    for phrase in phrases:
        entry = cache.get(_key(profile, phrase))
        if entry and entry.get("items"):
            return entry["items"]
    return []
