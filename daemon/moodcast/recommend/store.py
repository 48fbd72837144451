"""Items the recommender found or kept in its caches (moodcast.util.JsonFile), marked with where they came from."""

from __future__ import annotations


def tagged(items: list[dict], source: str) -> list[dict]:
    """Copies of cached or found items with their `source` ("cache", "search") for the recommendation payload."""
    return [{**item, "source": source} for item in items]
