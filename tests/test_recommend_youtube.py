"""The YouTube client: real googleapiclient over HTTP to a local fake of search.list."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from moodcast.recommend.quota import next_pacific_midnight, pacific_day
from moodcast.recommend.youtube import YoutubeClient
from tests.fake_http import Reply
from tests.fake_youtube import google_error
from tests.recommend_support import make_config

PHRASES = ["sad songs", "melancholy piano music"]


class Clock:
    """Wall time that a test moves forward (cache TTL, Pacific days)."""

    def __init__(self, iso: str = "2026-03-10T18:00:00+00:00"):
        self.now = datetime.fromisoformat(iso).timestamp()

    def __call__(self) -> float:
        return self.now


def client_for(cfg, clock=None) -> YoutubeClient:
    return YoutubeClient(cfg.youtube, cfg_key(cfg), cfg.state_dir, **({"clock": clock} if clock else {}))


def cfg_key(cfg) -> str:
    return open(cfg.youtube.api_key_file).read().strip()


def test_search_sends_the_documented_parameters(tmp_path, youtube):
    cfg = make_config(tmp_path, youtube=youtube,
                      overrides={"youtube": {"region_code": "DE", "relevance_language": "de"}})
    result = client_for(cfg).videos("sad", "sad songs", PHRASES)
    (req,) = youtube.searches()
    assert req.query == {"part": "snippet", "q": "sad songs", "type": "video", "maxResults": "5",
                         "safeSearch": "strict", "videoEmbeddable": "true", "videoCategoryId": "10", "regionCode": "DE",
                         "relevanceLanguage": "de", "key": youtube.api_key, "alt": "json"}
    assert result.error is None and len(result.items) == 5
    first = result.items[0]
    assert first["title"] == "Sad Songs & Friends #1"  # the API HTML-escapes titles
    assert len(first["video_id"]) == 11 and first["url"] == f"https://www.youtube.com/watch?v={first['video_id']}"
    assert first["source"] == "search"


def test_results_are_cached_on_disk_per_mood_until_the_ttl(tmp_path, youtube):
    cfg, clock = make_config(tmp_path, youtube=youtube), Clock()
    client_for(cfg, clock).videos("sad", "sad songs", PHRASES)
    again = client_for(cfg, clock).videos("sad", "sad songs", PHRASES)  # a restart: the cache is on disk
    assert [v["source"] for v in again.items] == ["cache"] * 5 and len(youtube.searches()) == 1
    client_for(cfg, clock).videos("angry", "sad songs", PHRASES)  # another mood has its own entry
    assert len(youtube.searches()) == 2
    clock.now += cfg.youtube.cache_ttl_s + 1
    assert client_for(cfg, clock).videos("sad", "sad songs", PHRASES).items[0]["source"] == "search"
    assert len(youtube.searches()) == 3


def test_quota_exceeded_serves_the_cache_and_stops_until_midnight_pacific(tmp_path, youtube):
    cfg, clock = make_config(tmp_path, youtube=youtube), Clock("2026-03-10T18:00:00+00:00")  # 11:00 PDT
    client = client_for(cfg, clock)
    client.videos("sad", "sad songs", PHRASES)
    youtube.quota_units = 0
    result = client.videos("sad", "melancholy piano music", PHRASES)
    assert "quotaExceeded" in result.error
    assert [v["source"] for v in result.items] == ["cache"] * 5  # the other phrase's cached videos
    reset = datetime(2026, 3, 11, 7, 0, tzinfo=timezone.utc).timestamp()  # midnight PDT
    assert client.budget.blocked_until == reset
    calls = len(youtube.searches())
    clock.now = reset - 60
    assert client_for(cfg, clock).videos("sad", "melancholy piano music", PHRASES).note  # still blocked after a restart
    assert len(youtube.searches()) == calls
    youtube.quota_units = 10000
    clock.now = reset + 1
    assert client_for(cfg, clock).videos("sad", "melancholy piano music", PHRASES).items[0]["source"] == "search"


def test_the_daily_budget_holds_across_a_restart_and_resets_with_the_pacific_day(tmp_path, youtube):
    cfg = make_config(tmp_path, youtube=youtube, overrides={"youtube": {"daily_budget": 2}})
    clock = Clock("2026-11-20T07:30:00+00:00")  # 23:30 PST on the 19th
    first = client_for(cfg, clock)
    first.videos("sad", "sad songs", PHRASES)
    first.videos("happy", "happy music", ["happy music"])
    second = client_for(cfg, clock)  # the daemon restarted
    assert second.budget.calls_today == 2
    refused = second.videos("angry", "angry rock music", ["angry rock music"])
    assert refused.items == [] and "budget" in refused.note and len(youtube.searches()) == 2
    clock.now += 31 * 60  # 00:01 PST: a new quota day
    assert client_for(cfg, clock).budget.calls_today == 0
    assert client_for(cfg, clock).videos("angry", "angry rock music", ["angry rock music"]).items
    assert len(youtube.searches()) == 3


@pytest.mark.parametrize("reply", [
    google_error(500, "backendError", "Backend Error", "global"),
    Reply(200, {"items": []}, delay=2.0),  # slower than timeout_s
])
def test_server_errors_and_timeouts_fall_back_to_stale_cache(tmp_path, youtube, reply):
    cfg, clock = make_config(tmp_path, youtube=youtube, overrides={"youtube": {"timeout_s": 0.3}}), Clock()
    client_for(cfg, clock).videos("sad", "sad songs", PHRASES)
    clock.now += cfg.youtube.cache_ttl_s + 1
    youtube.script("GET", "/youtube/v3/search", reply)
    client = client_for(cfg, clock)
    result = client.videos("sad", "sad songs", PHRASES)
    assert result.error and [v["source"] for v in result.items] == ["cache"] * 5
    assert client.backoff.wait_s() > 0  # and no new search until the backoff has passed
    assert client.videos("sad", "sad songs", PHRASES).note and len(youtube.searches()) == 2


def test_a_wrong_key_is_an_error_not_a_crash(tmp_path, youtube):
    cfg = make_config(tmp_path, youtube=youtube)
    result = YoutubeClient(cfg.youtube, "not-the-key", cfg.state_dir).videos("sad", "sad songs", PHRASES)
    assert result.items == [] and "400" in result.error and "API key not valid" in result.error


@pytest.mark.parametrize("utc, reset", [
    ("2026-07-01T12:00:00+00:00", "2026-07-02T07:00:00+00:00"),  # PDT
    ("2026-01-15T09:00:00+00:00", "2026-01-16T08:00:00+00:00"),  # 01:00 PST
    ("2026-01-15T07:30:00+00:00", "2026-01-15T08:00:00+00:00"),  # 23:30 PST the day before
])
def test_quota_days_follow_pacific_time(utc, reset):
    t = datetime.fromisoformat(utc).timestamp()
    assert next_pacific_midnight(t) == datetime.fromisoformat(reset).timestamp()
    assert pacific_day(next_pacific_midnight(t)) != pacific_day(t)


def test_searches_by_another_process_count_too(tmp_path, youtube):
    """`moodcast recommend` from a shell shares the ledger with the running daemon."""
    cfg, clock = make_config(tmp_path, youtube=youtube, overrides={"youtube": {"daily_budget": 2}}), Clock()
    daemon, shell = client_for(cfg, clock), client_for(cfg, clock)
    daemon.videos("sad", "sad songs", PHRASES)
    shell.videos("happy", "happy music", ["happy music"])
    assert "budget" in daemon.videos("angry", "angry rock music", ["angry rock music"]).note
    assert len(youtube.searches()) == 2
