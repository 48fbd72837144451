"""Mood -> music (Spotify) and videos (YouTube) recommendations, and Spotify Connect playback.

The daemon's entry is service.RecommendationService. This file imports nothing, so the
configuration can read defaults.py and spotify_links.py without loading the API clients."""
