"""`moodcast recommend <mood>` (try the settings from a shell) and `moodcast spotify-auth`."""

from __future__ import annotations

import json
import logging
import sys
from urllib.parse import urlparse

from spotipy.oauth2 import SpotifyOauthError

from moodcast.cli.spotify_setup import guided_setup, interactive_terminal
from moodcast.config import Config
from moodcast.errors import EX_CONFIG
from moodcast.labels import MOODS, POLICIES
from moodcast.recommend.service import RecommendationService
from moodcast.recommend.spotify_auth import NotConfigured, make_oauth, token_path


def add_commands(subparsers, parents=()) -> None:
    p = subparsers.add_parser("recommend", parents=list(parents),
                              help="show what moodcast recommends for a mood (and optionally play it)")
    p.add_argument("mood", choices=MOODS)
    p.add_argument("--policy", choices=POLICIES, help="instead of [recommendations] policy")
    p.add_argument("--play", action="store_true", help="also start the music on Spotify (no cool-down)")
    p.add_argument("--json", action="store_true", help="print the payloads as JSON, one per line")
    p.set_defaults(func=cmd_recommend)

    p = subparsers.add_parser("spotify-auth", parents=list(parents),
                              help="authorise moodcast for your Spotify account (once, from any shell)")
    p.set_defaults(func=cmd_spotify_auth)


def cmd_recommend(args, config: Config) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    published: list[tuple[str, dict]] = []
    service = RecommendationService(config, lambda kind, payload: published.append((kind, payload)))
    if args.policy:
        service.set_policy(args.policy)
    service.set_autoplay(args.play)
    service.run_once(args.mood)
    for kind, payload in published:
        print(json.dumps({"kind": kind, **payload}, ensure_ascii=False) if args.json else _describe(kind, payload))
    return _play_result(service, published) if args.play else 0


def _play_result(service: RecommendationService, published: list[tuple[str, dict]]) -> int:
    """--play: say so when nothing was played, and fail (78: Spotify is not set up; 1: playback failed)."""
    playback = [p for kind, p in published if kind == "playback"]
    if service.spotify is None:
        print("moodcast: --play: playback not attempted: Spotify is off (see the \"Spotify: off\" line above); "
              "it needs [spotify] client_id, the client secret and `moodcast spotify-auth`", file=sys.stderr)
        return EX_CONFIG
    if not playback:
        print(f"moodcast: --play: playback not attempted: no music to play (policy {service.policy})", file=sys.stderr)
        return 1
    return 0 if all(p["ok"] for p in playback) else 1


def _describe(kind: str, p: dict) -> str:
    if kind == "recommendation":
        lines = [f"{p['mood']}: policy {p['policy']}", "music:"]
        lines += [f"  {i['title']} - {i['artist']}  {i['url']}  [{i['source']}]" for i in p["music"]] or ["  (none)"]
        lines += ["videos:"]
        lines += [f"  {v['title']} - {v['channel']}  {v['url']}  [{v['source']}]" for v in p["videos"]] or ["  (none)"]
        return "\n".join(lines)
    if kind == "playback":
        return f"playback: {p['action']} {'ok' if p['ok'] else 'FAILED'}: {p['message']}"
    if p.get("type") == "error":
        return f"error ({p['component']}): {p['message']}"
    if p.get("type") == "recommendation_ready":
        music = f"{p['profile']} music; " if p.get("profile") and p["profile"] != p["mood"] else ""
        return f"({music}ready in {p['latency_ms']:.0f} ms, of which {p['api_ms']:.0f} ms waiting for the APIs)"
    return ""


def cmd_spotify_auth(args, config: Config) -> int:
    redirect = urlparse(config.spotify.redirect_uri)
    if redirect.hostname == "localhost" or not (redirect.scheme == "https" or redirect.hostname == "127.0.0.1"):
        print(f"moodcast: {config.source_path}: [spotify] redirect_uri: Spotify accepts only https or a loopback IP "
              f'such as http://127.0.0.1:8888/callback, got "{config.spotify.redirect_uri}"', file=sys.stderr)
        return EX_CONFIG
    try:
        oauth = make_oauth(config, login=True)
    except NotConfigured as e:
        print(f"moodcast: Spotify: {e}", file=sys.stderr)
        return EX_CONFIG
    print(f"1. In your app at developer.spotify.com the redirect URI must be exactly {config.spotify.redirect_uri}")
    print(f"2. Open this address in a browser on any machine and agree:\n\n   {oauth.get_authorize_url()}\n")
    print("3. The browser then fails to load a 127.0.0.1 page; that is expected. Copy its whole address.")
    try:
        pasted = input("Paste the address here: ").strip()
        state, code = oauth.parse_auth_response_url(pasted)
        if not code or state != oauth.state:
            raise SpotifyOauthError("that address has no code from this login (copy the whole address bar)")
        oauth.get_access_token(code=code, as_dict=False, check_cache=False)
    except (SpotifyOauthError, EOFError) as e:
        print(f"moodcast: Spotify authorisation failed: {e or 'no input'}", file=sys.stderr)
        return 1
    except OSError as e:  # requests' network errors are OSErrors
        print(f"moodcast: Spotify authorisation failed: cannot reach {config.spotify.accounts_url}: {e}",
              file=sys.stderr)
        return 1
    print(f"Saved the token to {token_path(config)} (mode 0600); the daemon refreshes it from now on.")
    guided_setup(config, oauth, interactive_terminal())
    return 0
