"""A local stand-in for YouTube Data API v3 search.list (GET /youtube/v3/search) and i18nRegions.list
(GET /youtube/v3/i18nRegions, what `check-config --online` asks), with the documented parameter
checks, quota costs (100 units per search, 1 per i18nRegions) and Google's error bodies:
{"error": {"code": 403, "message": ..., "errors": [{"reason": "quotaExceeded", ...}]}}.
"""

from __future__ import annotations

import base64
import hashlib

from tests.fake_http import FakeServer, Reply, Request

SEARCH_COST = 100
COSTS = {"/youtube/v3/search": SEARCH_COST, "/youtube/v3/i18nRegions": 1}


def google_error(status: int, reason: str, message: str, domain: str = "youtube.parameter") -> Reply:
    return Reply(status, {"error": {"code": status, "message": message,
                                    "errors": [{"message": message, "domain": domain, "reason": reason}]}})


def quota_exceeded() -> Reply:
    return google_error(403, "quotaExceeded", "The request cannot be completed because you have exceeded your "
                        '<a href="/youtube/v3/getting-started#quota">quota</a>.', "youtube.quota")


def video_id(seed: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha1(seed.encode()).digest()).decode()[:11]


class FakeYoutube(FakeServer):
    def __init__(self, api_key: str = "test-youtube-key", quota_units: int = 10000):
        super().__init__()
        self.api_key, self.quota_units = api_key, quota_units

    def searches(self) -> list[Request]:
        return self.hits("GET", "/youtube/v3/search")

    def route(self, req: Request) -> Reply:
        if req.method != "GET" or req.path not in COSTS:
            return google_error(404, "notFound", "Not Found", "global")
        if req.query.get("key") != self.api_key:
            return google_error(400, "badRequest", "API key not valid. Please pass a valid API key.", "global")
        with self.lock:
            if self.quota_units < COSTS[req.path]:
                return quota_exceeded()
            self.quota_units -= COSTS[req.path]
        scripted = self.scripted(req)
        if scripted:
            return scripted
        return self._search(req.query) if req.path.endswith("/search") else self._regions(req.query)

    def _regions(self, q: dict) -> Reply:
        if q.get("part") != "snippet":
            return google_error(400, "invalidPart", "part must be snippet")
        items = [{"kind": "youtube#i18nRegion", "etag": "e", "id": code, "snippet": {"gl": code, "name": name}}
                 for code, name in (("DE", "Germany"), ("US", "United States"))]
        return Reply(200, {"kind": "youtube#i18nRegionListResponse", "etag": "e", "items": items})

    def _search(self, q: dict) -> Reply:
        problem = _check(q)
        if problem:
            return google_error(400, *problem)
        n = int(q.get("maxResults", "5"))
        items = [{"kind": "youtube#searchResult", "etag": "e",
                  "id": {"kind": "youtube#video", "videoId": video_id(f"{q['q']}/{i}")},
                  "snippet": {"publishedAt": "2025-01-01T00:00:00Z", "channelId": "UC123",
                              "title": f"{q['q'].title()} &amp; Friends #{i + 1}", "description": "",
                              "channelTitle": f"Channel {i + 1}", "liveBroadcastContent": "none"}}
                 for i in range(n)]
        return Reply(200, {"kind": "youtube#searchListResponse", "etag": "e", "regionCode": q.get("regionCode", "US"),
                           "pageInfo": {"totalResults": 1000, "resultsPerPage": n}, "items": items})


def _check(q: dict) -> tuple[str, str] | None:
    if q.get("part") != "snippet":
        return "invalidPart", "part must be snippet"
    needs_video = ("videoEmbeddable", "videoCategoryId", "videoDuration", "videoDefinition")
    if any(k in q for k in needs_video) and q.get("type") != "video":
        return "invalidSearchFilter", "video filters need type=video"
    if q.get("safeSearch", "moderate") not in ("none", "moderate", "strict"):
        return "invalidParameter", "safeSearch"
    if not 0 <= int(q.get("maxResults", "5")) <= 50:
        return "invalidParameter", "maxResults"
    return None
