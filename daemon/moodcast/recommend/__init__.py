"""Mood -> music (Spotify) and videos (YouTube) recommendations, and Spotify Connect playback."""

from .service import RecommendationService

__all__ = ["RecommendationService"]
