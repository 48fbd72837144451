"""The Spotify client: real spotipy over HTTP to a local fake of the accounts service and Web API."""

from __future__ import annotations

import json
import socket
import stat
import time

import pytest

from moodcast.recommend.spotify import SpotifyClient, SpotifyFailure
from moodcast.recommend.spotify_auth import daemon_oauth
from tests.fake_http import Reply
from tests.fake_spotify import error, write_token
from tests.recommend_support import make_config


def client_for(cfg) -> SpotifyClient:
    return SpotifyClient(cfg.spotify, daemon_oauth(cfg))


def failure_of(call) -> SpotifyFailure:
    with pytest.raises(SpotifyFailure) as err:
        call()
    return err.value


def test_playlist_search_sends_a_dev_mode_limit_and_skips_null_items(tmp_path, spotify):
    client = client_for(make_config(tmp_path, spotify))
    items = client.search_playlists("sad songs")
    (req,) = spotify.hits("GET", "/v1/search")
    assert req.query == {"q": "sad songs", "type": "playlist", "limit": "10", "offset": "0"}
    assert len(items) == 9  # the fake returns one null entry, like the real API
    assert items[0] == {"title": "Sad Songs Mix 1", "artist": "curator1", "uri": items[0]["uri"],
                        "url": "https://open.spotify.com/playlist/" + items[0]["uri"].split(":")[2]}


def test_an_expired_token_is_refreshed_before_the_call_and_cached_0600(tmp_path, spotify):
    cfg = make_config(tmp_path, spotify)
    token_file = cfg.state_dir / "spotify_token.json"
    write_token(token_file, spotify.token_info(expires_in=-10))
    client_for(cfg).devices()
    assert len(spotify.hits("POST", "/api/token")) == 1
    assert json.loads(token_file.read_text())["access_token"] == spotify.access_token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_a_401_refreshes_the_token_and_retries_once(tmp_path, spotify):
    client = client_for(make_config(tmp_path, spotify))
    spotify.revoke_access_token()  # server-side: the cached token is no longer valid
    devices = client.devices()
    assert [d.name for d in devices] == ["Kitchen", "Phone"]
    assert len(spotify.hits("GET", "/v1/me/player/devices")) == 2
    assert len(spotify.hits("POST", "/api/token")) == 1


def test_a_revoked_refresh_token_is_an_auth_failure_naming_the_fix(tmp_path, spotify):
    client = client_for(make_config(tmp_path, spotify))
    spotify.revoke_access_token()
    spotify.refresh_token = "refresh-issued-elsewhere"
    failure = failure_of(client.devices)
    assert failure.kind == "auth" and "moodcast spotify-auth" in failure.message


def test_429_retry_after_3600_returns_at_once_and_the_wait_is_bounded(tmp_path, spotify):
    client = client_for(make_config(tmp_path, spotify, overrides={"spotify": {"backoff_max_s": 120.0}}))
    spotify.script("GET", "/v1/me/player/devices",
                   error(429, "API rate limit exceeded", headers={"Retry-After": "3600"}))
    start = time.monotonic()
    failure = failure_of(client.devices)
    assert time.monotonic() - start < 1.0  # spotipy's urllib3 Retry would have slept for an hour here
    assert failure.kind == "rate_limited" and "3600" in failure.message
    assert failure.retry_after == 120.0 and 110 < client.backoff.wait_s() <= 120
    assert client.last_status == "rate_limited"
    later = failure_of(client.devices)  # no request while waiting
    assert later.kind == "backoff" and len(spotify.hits("GET", "/v1/me/player/devices")) == 1


def test_5xx_backs_off_exponentially_and_success_resets(tmp_path, spotify):
    client = client_for(make_config(tmp_path, spotify))  # backoff_initial_s = 0.05
    spotify.script("GET", "/v1/me/player/devices", error(503, "Service unavailable"), times=2)
    assert failure_of(client.devices).kind == "server"
    assert 0.03 < client.backoff.wait_s() <= 0.05
    time.sleep(0.06)
    assert failure_of(client.devices).kind == "server"
    assert 0.08 < client.backoff.wait_s() <= 0.1
    time.sleep(0.11)
    assert client.devices() and client.backoff.failures == 0 and client.last_status == "ok"


def test_a_slow_server_is_a_timeout_not_a_hang(tmp_path, spotify):
    client = client_for(make_config(tmp_path, spotify, overrides={"spotify": {"timeout_s": 0.3}}))
    spotify.script("GET", "/v1/me/player", Reply(200, {"is_playing": False}, delay=2.0))
    start = time.monotonic()
    assert failure_of(client.playback).kind == "timeout"
    assert time.monotonic() - start < 1.0


def test_network_down_is_reported_as_network(tmp_path, spotify):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    client = client_for(make_config(tmp_path, spotify, overrides={"spotify": {"api_url": f"http://127.0.0.1:{closed}/v1/"}}))
    assert failure_of(client.devices).kind == "network"
    assert client.backoff.wait_s() > 0


def test_no_premium_and_missing_device_are_told_apart(tmp_path, spotify):
    client = client_for(make_config(tmp_path, spotify))
    gone = failure_of(lambda: client.play("dev-vanished", "spotify:playlist:abc"))
    assert gone.kind == "device" and gone.status == 404 and "Device not found" in gone.message
    spotify.premium = False
    assert failure_of(lambda: client.play("dev-kitchen", "spotify:playlist:abc")).kind == "premium"


def test_tracks_play_as_uris_and_contexts_as_context_uri(tmp_path, spotify):
    client = client_for(make_config(tmp_path, spotify))
    client.play("dev-kitchen", "spotify:track:4uLU6hMCjMI75M1A2tKUQC")
    client.play("dev-kitchen", "spotify:album:1A2b3C")
    bodies = [r.json() for r in spotify.plays()]
    assert bodies == [{"uris": ["spotify:track:4uLU6hMCjMI75M1A2tKUQC"]}, {"context_uri": "spotify:album:1A2b3C"}]


def test_why_a_plain_session_retries_0_alone_would_lose_the_retry_after_header(spotify):
    """Documents the library behaviour behind SpotifyClient's plain requests.Session: with spotipy's
    own session, retries=0 still turns a 429 into "Max Retries" without its headers."""
    import spotipy

    spotify.script("GET", "/v1/me/player/devices", error(429, "API rate limit exceeded", headers={"Retry-After": "7"}))
    sp = spotipy.Spotify(auth=spotify.access_token, retries=0, status_retries=0, requests_timeout=1)
    sp.prefix = f"{spotify.url}/v1/"
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.devices()
    assert err.value.http_status == 429 and "Retry-After" not in (err.value.headers or {})
