"""Spotify authorisation for a headless box: the authorization-code flow once from a shell
(`moodcast spotify-auth`), then only refresh tokens.

The token cache lives in the state directory with mode 0600. The daemon's auth manager never
prompts: spotipy would otherwise fall back to input() on a missing or mismatching token and hang
the worker thread forever.
"""

from __future__ import annotations

import secrets as _secrets
from pathlib import Path

import requests
from spotipy.cache_handler import CacheHandler
from spotipy.oauth2 import SpotifyOAuth, SpotifyOauthError

from ..config import Config
from ..secrets import read_secret
from ..util import JsonFile

SCOPES = "user-read-playback-state user-modify-playback-state"
TOKEN_FILE = "spotify_token.json"


class NotConfigured(Exception):
    """A feature lacks credentials; the message says what to set."""


class TokenCache(CacheHandler):
    """spotipy's cache interface over an atomically written 0600 file."""

    def __init__(self, path: Path):
        self._file = JsonFile(path)

    def get_cached_token(self):
        return self._file.load() or None

    def save_token_to_cache(self, token_info):
        self._file.save(token_info)


class MoodcastOAuth(SpotifyOAuth):
    """SpotifyOAuth with a configurable accounts server that never prompts (`spotify-auth` passes
    the code it read itself)."""

    def __init__(self, *, accounts_url: str, **kwargs):
        super().__init__(**kwargs)
        base = accounts_url.rstrip("/")
        self.OAUTH_AUTHORIZE_URL = f"{base}/authorize"
        self.OAUTH_TOKEN_URL = f"{base}/api/token"

    def get_auth_response(self, open_browser=None):
        raise SpotifyOauthError("Spotify is not authorised (or the scopes changed): run `moodcast spotify-auth`")

    def refresh_now(self) -> None:
        """Refresh although the cached token has not expired (the server said 401)."""
        token = self.cache_handler.get_cached_token()
        if not token or "refresh_token" not in token:
            raise SpotifyOauthError("no Spotify refresh token: run `moodcast spotify-auth`")
        self.refresh_access_token(token["refresh_token"])


def token_path(config: Config) -> Path:
    return config.state_dir / TOKEN_FILE


def client_credentials(config: Config) -> tuple[str, str]:
    """(client_id, client_secret); raises NotConfigured or SecretError with a one-line reason."""
    if not config.spotify.client_id:
        raise NotConfigured("no [spotify] client_id in the config")
    secret = read_secret("spotify_client_secret", config.spotify.client_secret_file or None)
    if not secret:
        raise NotConfigured("no client secret (credential spotify_client_secret, [spotify] client_secret_file "
                            "or MOODCAST_SPOTIFY_CLIENT_SECRET)")
    return config.spotify.client_id, secret


def make_oauth(config: Config, login: bool = False) -> MoodcastOAuth:
    client_id, secret = client_credentials(config)
    return MoodcastOAuth(
        accounts_url=config.spotify.accounts_url,
        client_id=client_id,
        client_secret=secret,
        redirect_uri=config.spotify.redirect_uri,
        scope=SCOPES,
        # a state value ties the pasted redirect to this run (CSRF); spotipy checks it
        state=_secrets.token_urlsafe(16) if login else None,
        cache_handler=TokenCache(token_path(config)),
        open_browser=False,
        requests_session=requests.Session(),
        requests_timeout=config.spotify.timeout_s,
    )


def daemon_oauth(config: Config) -> MoodcastOAuth:
    """The refresh-only auth manager; NotConfigured when `spotify-auth` has not been run."""
    oauth = make_oauth(config)
    token = oauth.cache_handler.get_cached_token()
    if not token or "refresh_token" not in token:
        raise NotConfigured(f"not authorised yet (no token in {token_path(config)}): run `moodcast spotify-auth`")
    return oauth
