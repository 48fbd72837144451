"""Spotify and YouTube tried once, for `check-config --online`: is the configuration accepted now?

Each function returns what worked in a few words, or raises ConfigError (exit 78: only the
configuration, a secret or `moodcast spotify-auth` can mend it) or ServiceUnavailable (exit 69: the
service is down, slow or refusing for now).
"""

from __future__ import annotations

import httplib2
import requests
from googleapiclient.errors import HttpError
from spotipy.oauth2 import SpotifyOauthError

from ..config import Config, ConfigError
from ..errors import ServiceUnavailable
from .spotify import TRANSIENT, SpotifyClient, SpotifyFailure, find_device
from .spotify_auth import NotConfigured, daemon_oauth
from .youtube import QUOTA_REASONS, YoutubeClient, error_reason

CHECK_UNITS = 1  # what YoutubeClient.check_key costs of the default 10,000 units a day
ACCOUNT_PROBLEMS = {"invalid_grant": "the saved authorisation was revoked or has expired: run `moodcast "
                                     "spotify-auth` again",
                    "invalid_client": "[spotify] client_id or the client secret is wrong"}


def try_spotify(config: Config) -> tuple[str, str | None]:
    """Refresh the token and list the devices: (what worked, a caveat such as a speaker that is offline)."""
    try:
        oauth = daemon_oauth(config)
    except NotConfigured as e:
        raise ConfigError(f"Spotify: {e}") from None
    try:
        oauth.refresh_now()
    except SpotifyOauthError as e:
        if e.error in ACCOUNT_PROBLEMS:
            raise ConfigError(f"Spotify refused the token refresh ({e.error}): {ACCOUNT_PROBLEMS[e.error]}") from None
        raise ServiceUnavailable(f"Spotify token refresh failed: {str(e)[:200]}") from None
    except requests.RequestException as e:
        raise ServiceUnavailable(f"Spotify: cannot reach {config.spotify.accounts_url} ({type(e).__name__})") from None
    try:
        devices = SpotifyClient(config.spotify, oauth).devices()
    except SpotifyFailure as e:
        raise (ServiceUnavailable if e.kind in TRANSIENT else ConfigError)(e.message) from None
    online = ", ".join(d.name for d in devices) or "none"
    wanted = config.spotify.device_name
    if not wanted:
        return f"token refreshed; plays on the active device (no [spotify] device_name); online now: {online}", None
    if find_device(devices, wanted):
        return f'token refreshed; device "{wanted}" is online', None
    return "token refreshed", (f'device "{wanted}" is not online right now (online: {online}); idle speakers '
                               "vanish from Spotify Connect: play something on it once, or check the name")


def try_youtube(config: Config, api_key: str) -> str:
    """One i18nRegions.list call with the key."""
    client = YoutubeClient(config.youtube, api_key, config.state_dir)
    try:
        client.check_key()
    except HttpError as e:
        reason = error_reason(e) or e.reason
        if e.status_code == 403 and reason in QUOTA_REASONS:
            raise ServiceUnavailable(f"YouTube: the key works but today's quota is spent ({reason}); it resets at "
                                     "midnight Pacific time") from None
        if e.status_code in (400, 401, 403):
            raise ConfigError(f"YouTube refused the API key ({e.status_code} {reason}): check the youtube_api_key "
                              "secret, and that YouTube Data API v3 is enabled for its project") from None
        raise ServiceUnavailable(f"YouTube: {e.status_code} {reason}") from None
    except (OSError, httplib2.HttpLib2Error) as e:
        raise ServiceUnavailable(f"YouTube: cannot reach {config.youtube.api_url} ({type(e).__name__}: {e})") from None
    return f"the API key works (i18nRegions.list: {CHECK_UNITS} quota unit of the 10,000 a day)"
