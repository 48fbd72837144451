"""The music and videos each mood gets out of the box: [recommendations.moods.<mood>] tables that a
configuration leaves out, or keys it leaves out of one, come from here (config merges them in before
validation). `calm` is no mood but a shipped uplift step."""

from __future__ import annotations

from typing import Any

MOOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "angry": {"uplift": ["calm", "neutral"], "spotify_search": ["angry rock", "heavy metal"],
              "youtube_search": ["angry rock music", "heavy metal music"]},
    "disgust": {"uplift": ["calm", "neutral"], "spotify_search": ["grunge", "punk rock"],
                "youtube_search": ["grunge music", "punk rock music"]},
    "fear": {"uplift": ["calm", "neutral"], "spotify_search": ["dark ambient", "suspense soundtrack"],
             "youtube_search": ["dark ambient music", "suspense soundtrack"]},
    "happy": {"uplift": [], "spotify_search": ["happy hits", "feel good pop"],
              "youtube_search": ["happy music", "feel good songs"]},
    "sad": {"uplift": ["calm", "neutral", "happy"], "spotify_search": ["sad songs", "melancholy piano"],
            "youtube_search": ["sad songs", "melancholy piano music"]},
    "surprise": {"uplift": [], "spotify_search": ["upbeat indie", "energetic dance"],
                 "youtube_search": ["upbeat indie music", "energetic dance music"]},
    "neutral": {"uplift": [], "spotify_search": ["chill focus", "lofi beats"],
                "youtube_search": ["lofi beats", "chill focus music"]},
    "calm": {"uplift": [], "spotify_search": ["calm acoustic", "peaceful piano"],
             "youtube_search": ["relaxing music", "calm piano music"]},
}
