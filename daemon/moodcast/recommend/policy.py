"""What to recommend for a mood: which table's music (match or an uplift step) and in what order.

`match` plays the mood's own table. `uplift` walks the mood's `uplift` list (e.g. sad -> calm ->
neutral -> happy), one step per `uplift_step_s` while the mood holds; an empty list means the
mood's own music (nothing to lift from happy). The global policy "off" silences every mood.
"""

from __future__ import annotations

import random
from collections import deque

from ..config import MoodMusicConfig, RecommendationsConfig
from ..labels import Policy


def effective_policy(global_policy: Policy | str, table: MoodMusicConfig) -> Policy:
    if Policy(global_policy) is Policy.OFF:
        return Policy.OFF
    return Policy(table.policy or global_policy)


def uplift_steps(mood: str, policy: Policy, rc: RecommendationsConfig) -> list[str]:
    """The tables to play in turn for `mood`; a single entry when there is nothing to walk."""
    steps = rc.moods[mood].uplift if policy == Policy.UPLIFT else []
    return list(steps) or [mood]


def profile_for(mood: str, policy: Policy, step: int, rc: RecommendationsConfig) -> str:
    steps = uplift_steps(mood, policy, rc)
    return steps[min(step, len(steps) - 1)]


class History:
    """The last choices, so a mood that comes back does not get the same playlist again."""

    def __init__(self, size: int, rng: random.Random | None = None):
        self._recent: deque[str] = deque(maxlen=max(size, 1))
        self._size = size
        self._rng = rng or random.Random()

    def add(self, uri: str) -> None:
        if uri in self._recent:
            self._recent.remove(uri)
        self._recent.append(uri)

    def order(self, items: list[dict]) -> list[dict]:
        """`items` with the one to play first: the user's own (configured) before search results,
        shuffled within each group, skipping the last `size` choices; if every item was played
        lately, the one played longest ago."""
        recent = list(self._recent) if self._size else []
        fresh = [i for i in items if i["uri"] not in recent]
        own = [i for i in fresh if i["source"] == "configured"]
        found = [i for i in fresh if i["source"] != "configured"]
        self._rng.shuffle(own)
        self._rng.shuffle(found)
        stale = sorted((i for i in items if i["uri"] in recent), key=lambda i: recent.index(i["uri"]))
        return own + found + stale
