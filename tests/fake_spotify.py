"""A local stand-in for the Spotify accounts service and the Web API endpoints moodcast uses,
answering with the documented status codes and bodies:

- POST /api/token (authorization_code, refresh_token; client auth by HTTP Basic)
- GET /v1/me/player/devices, GET /v1/me/player (204 when nothing plays)
- PUT /v1/me/player (transfer), PUT /v1/me/player/play, /pause, /volume
- GET /v1/search (type=playlist; limit <= 10 like a development-mode app)
- GET /v1/playlists|albums|artists|tracks/{id}

Errors look like the real ones: {"error": {"status": 404, "message": "Device not found"}},
player errors carry a `reason` (PREMIUM_REQUIRED, NO_ACTIVE_DEVICE).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from urllib.parse import parse_qs

from tests.fake_http import FakeServer, Reply, Request

SCOPE = "user-read-playback-state user-modify-playback-state"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def spotify_id(seed: str) -> str:
    n = int.from_bytes(hashlib.sha1(seed.encode()).digest(), "big")
    return "".join(_B62[(n >> (6 * i)) % 62] for i in range(22))


def error(status: int, message: str, reason: str | None = None, headers: dict | None = None) -> Reply:
    body = {"error": {"status": status, "message": message}}
    if reason:
        body["error"]["reason"] = reason
    return Reply(status, body, headers or {})


class FakeSpotify(FakeServer):
    def __init__(self, client_id: str = "moodcast-test-client", client_secret: str = "test-secret",
                 premium: bool = True):
        super().__init__()
        self.client_id, self.client_secret, self.premium = client_id, client_secret, premium
        self.access_token, self.refresh_token = "access-1", "refresh-1"
        self.auth_code = "code-from-spotify"
        self.redirect_uri = "http://127.0.0.1:8888/callback"
        self._issued = 1
        self.devices = [
            {"id": "dev-kitchen", "name": "Kitchen", "type": "Speaker", "is_active": False},
            {"id": "dev-phone", "name": "Phone", "type": "Smartphone", "is_active": False},
        ]
        self.playback: dict | None = None   # what GET /v1/me/player shows
        self.volume: int | None = None
        self.catalog: dict[str, tuple[str, str]] = {}  # uri -> (name, owner)

    # --- test helpers ----------------------------------------------------------------------
    def token_info(self, expires_in: int = 3600) -> dict:
        """A token cache as `moodcast spotify-auth` leaves it (spotipy's format)."""
        return {"access_token": self.access_token, "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": self.refresh_token, "scope": SCOPE, "expires_at": int(time.time()) + expires_in}

    def revoke_access_token(self) -> None:
        """The current access token stops working (the API answers 401) before its expiry."""
        self._issued += 1
        self.access_token = f"access-{self._issued}"

    def user_plays(self, uri: str, device: str = "Phone") -> None:
        """The user starts something themselves, e.g. from the phone app."""
        dev = next(d for d in self.devices if d["name"] == device)
        self.playback = {"device": dev, "is_playing": True, "context": {"uri": uri}, "item": {"uri": "spotify:track:x"}}

    def plays(self) -> list[Request]:
        return self.hits("PUT", "/v1/me/player/play")

    # --- routing -----------------------------------------------------------------------------
    def route(self, req: Request) -> Reply:
        if req.path == "/api/token" and req.method == "POST":
            return self._token(req)
        if req.headers.get("authorization") != f"Bearer {self.access_token}":
            return error(401, "The access token expired" if req.headers.get("authorization") else "No token provided")
        scripted = self.scripted(req)
        if scripted:
            return scripted
        with self.lock:
            return self._api(req)

    def _api(self, req: Request) -> Reply:
        routes = [
            ("GET", r"/v1/me/player/devices", lambda r: Reply(200, {"devices": self._device_list()})),
            ("GET", r"/v1/me/player", lambda r: Reply(200, self.playback) if self.playback else Reply(204)),
            ("PUT", r"/v1/me/player", self._transfer),
            ("PUT", r"/v1/me/player/play", self._play),
            ("PUT", r"/v1/me/player/pause", self._pause),
            ("PUT", r"/v1/me/player/volume", self._volume),
            ("GET", r"/v1/search", self._search),
            ("GET", r"/v1/(playlists|albums|artists|tracks)/([A-Za-z0-9]+)", self._item),
        ]
        for method, pattern, handler in routes:
            if req.method == method and re.fullmatch(pattern, req.path):
                return handler(req)
        return error(404, "Service not found")

    def _token(self, req: Request) -> Reply:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if req.headers.get("authorization") != f"Basic {expected}":
            return Reply(400, {"error": "invalid_client", "error_description": "Invalid client"})
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if form.get("grant_type") == "refresh_token" and form.get("refresh_token") == self.refresh_token:
            self.revoke_access_token()
            return Reply(200, {"access_token": self.access_token, "token_type": "Bearer", "expires_in": 3600,
                               "scope": SCOPE})
        if (form.get("grant_type") == "authorization_code" and form.get("code") == self.auth_code
                and form.get("redirect_uri") == self.redirect_uri):
            return Reply(200, {"access_token": self.access_token, "token_type": "Bearer", "expires_in": 3600,
                               "refresh_token": self.refresh_token, "scope": SCOPE})
        return Reply(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"
                           if form.get("grant_type") == "refresh_token" else "Invalid authorization code"})

    def _device_list(self) -> list[dict]:
        active = (self.playback or {}).get("device", {}).get("id")
        return [{**d, "is_active": d["id"] == active, "is_private_session": False, "is_restricted": False,
                 "volume_percent": self.volume or 50, "supports_volume": True} for d in self.devices]

    def _device(self, device_id: str | None) -> dict | None:
        return next((d for d in self.devices if d["id"] == device_id), None)

    def _transfer(self, req: Request) -> Reply:
        body = req.json() or {}
        ids = body.get("device_ids") or []
        if len(ids) != 1:
            return error(400, "Only one device_id is supported")
        if not self.premium:
            return error(403, "Player command failed: Premium required", "PREMIUM_REQUIRED")
        device = self._device(ids[0])
        if not device:
            return error(404, "Device not found")
        old = self.playback or {"is_playing": False, "context": None, "item": None}
        self.playback = {**old, "device": device, "is_playing": bool(body.get("play")) or old["is_playing"]}
        return Reply(204)

    def _play(self, req: Request) -> Reply:
        if not self.premium:
            return error(403, "Player command failed: Premium required", "PREMIUM_REQUIRED")
        device_id = req.query.get("device_id")
        device = self._device(device_id) if device_id else (self.playback or {}).get("device")
        if device_id and not device:
            return error(404, "Device not found")
        if not device:
            return error(404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE")
        body = req.json() or {}
        context, uris = body.get("context_uri"), body.get("uris")
        if context and not re.fullmatch(r"spotify:(playlist|album|artist|show):[A-Za-z0-9]+", context):
            return error(400, "Invalid context uri")
        if uris is not None and not all(re.fullmatch(r"spotify:(track|episode):[A-Za-z0-9]+", u) for u in uris):
            return error(400, "Invalid track uri")
        self.playback = {"device": device, "is_playing": True,
                         "context": {"uri": context} if context else None,
                         "item": {"uri": uris[0] if uris else f"spotify:track:{spotify_id(context or 'resume')}"}}
        return Reply(204)

    def _pause(self, req: Request) -> Reply:
        if not self.playback:
            return error(404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE")
        if not self.playback["is_playing"]:
            return error(403, "Player command failed: Restriction violated", "UNKNOWN")
        self.playback = {**self.playback, "is_playing": False}
        return Reply(204)

    def _volume(self, req: Request) -> Reply:
        try:
            volume = int(req.query.get("volume_percent", ""))
        except ValueError:
            return error(400, "Invalid volume_percent")
        if not 0 <= volume <= 100:
            return error(400, "Invalid volume_percent")
        if req.query.get("device_id") and not self._device(req.query["device_id"]):
            return error(404, "Device not found")
        self.volume = volume
        return Reply(204)

    def _search(self, req: Request) -> Reply:
        q, types = req.query.get("q", ""), req.query.get("type", "").split(",")
        if not q:
            return error(400, "No search query")
        try:
            limit, offset = int(req.query.get("limit", "20")), int(req.query.get("offset", "0"))
        except ValueError:
            return error(400, "Invalid limit")
        if not 1 <= limit <= 10:  # development-mode apps since 2026
            return error(400, "Invalid limit")
        if types != ["playlist"]:
            return error(400, "Only type=playlist is faked")
        items = []
        for i in range(offset, offset + limit):
            if i == 1:
                items.append(None)  # the real API returns null entries in playlist results
                continue
            pid = spotify_id(f"{q}/{i}")
            items.append({"id": pid, "name": f"{q.title()} Mix {i + 1}", "uri": f"spotify:playlist:{pid}",
                          "external_urls": {"spotify": f"https://open.spotify.com/playlist/{pid}"},
                          "owner": {"display_name": f"curator{i + 1}"}, "type": "playlist"})
        page = {"href": "", "items": items, "limit": limit, "next": None, "offset": offset, "previous": None,
                "total": limit}
        return Reply(200, {"playlists": page})

    def _item(self, req: Request) -> Reply:
        kind, ident = re.fullmatch(r"/v1/(\w+)s/(\w+)", req.path).groups()
        known = self.catalog.get(f"spotify:{kind}:{ident}")
        if not known:
            return error(404, "Resource not found")
        name, by = known
        if kind == "playlist":
            return Reply(200, {"name": name, "owner": {"display_name": by}})
        return Reply(200, {"name": name, "artists": [{"name": by}], "uri": f"spotify:{kind}:{ident}"})


def write_token(path, info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info))
    path.chmod(0o600)
