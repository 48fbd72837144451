"""Music candidates for a mood's table: the user's own Spotify URIs first, then playlists found by
the table's search phrases (cached on disk; Spotify no longer recommends by mood for new apps).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import MoodMusicConfig
from ..util import JsonFile
from .spotify import SpotifyClient, SpotifyFailure
from .spotify_links import uri_to_url
from .store import tagged

log = logging.getLogger("moodcast.recommend")

_TITLE_TTL_S = 30 * 86400  # names of the user's own playlists rarely change


@dataclass
class MusicResult:
    items: list[dict] = field(default_factory=list)
    errors: list[SpotifyFailure] = field(default_factory=list)


class MusicCatalog:
    def __init__(self, spotify: SpotifyClient | None, search_ttl_s: float, state_dir: Path, clock=time.time):
        self._spotify, self._ttl, self._clock = spotify, search_ttl_s, clock
        self._cache = JsonFile(state_dir / "spotify_cache.json")
        self.cache_hits = 0

    def items(self, table: MoodMusicConfig) -> MusicResult:
        cache, result = self._cache.load(), MusicResult()
        before = dict(cache)
        configured = [self._configured_item(uri, cache, result) for uri in table.spotify_uris]
        found = [item for phrase in table.spotify_search for item in self._search(phrase, cache, result)]
        if cache != before:
            self._cache.save(cache)
        unique: dict[str, dict] = {}
        for item in configured + found:
            unique.setdefault(item["uri"], item)  # the first of each URI, in order
        result.items = list(unique.values())
        return result

    def _search(self, phrase: str, cache: dict, result: MusicResult) -> list[dict]:
        entry = cache.get(f"search|{phrase}")
        if entry and self._clock() - entry["fetched_at"] < self._ttl:
            self.cache_hits += 1
            return tagged(entry["items"], "cache")
        if self._spotify:
            try:
                items = self._spotify.search_playlists(phrase)
                cache[f"search|{phrase}"] = {"fetched_at": self._clock(), "items": items}
                return tagged(items, "search")
            except SpotifyFailure as f:
                result.errors.append(f)
        return tagged(entry["items"], "cache") if entry else []  # stale beats nothing

    def _configured_item(self, uri: str, cache: dict, result: MusicResult) -> dict:
        title, artist = self._title(uri, cache, result)
        return {"title": title, "artist": artist, "uri": uri, "url": uri_to_url(uri), "source": "configured"}

    def _title(self, uri: str, cache: dict, result: MusicResult) -> tuple[str, str]:
        entry = cache.get(f"title|{uri}")
        if entry and self._clock() - entry["fetched_at"] < _TITLE_TTL_S:
            return entry["title"], entry["artist"]
        described = None
        if self._spotify:
            try:
                described = self._spotify.describe(uri)
            except SpotifyFailure as f:
                result.errors.append(f)
        if described:
            cache[f"title|{uri}"] = {"fetched_at": self._clock(), "title": described[0], "artist": described[1]}
            return described
        if entry:
            return entry["title"], entry["artist"]
        kind, ident = uri.split(":")[1:]
        return f"Spotify {kind} {ident}", ""  # no name known yet; the link still works
