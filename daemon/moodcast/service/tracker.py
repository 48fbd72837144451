"""Per-frame probabilities -> a stable mood, with explicit no_face and uncertain states.

Smoothing (EMA) removes frame-to-frame noise, the confidence floor keeps weak guesses out,
hysteresis (a new mood must beat the current one by a margin) and a minimum dwell time stop a
mood from flickering between two close classes. Time comes from frame timestamps, so replays
behave exactly like live cameras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from moodcast.config import MoodConfig
from moodcast.labels import NO_FACE, UNCERTAIN


@dataclass(frozen=True)
class MoodChange:
    previous: str
    mood: str
    confidence: float
    held_for_s: float  # how long the previous mood lasted
    timestamp: float


class MoodTracker:
    def __init__(self, cfg: MoodConfig, labels: tuple[str, ...], start: float = 0.0):
        self.cfg, self.labels = cfg, labels
        self.mood, self.since = NO_FACE, start
        self.smoothed: np.ndarray | None = None
        self.last_face_at: float | None = None
        self._pending: str | None = None
        self._pending_since = start

    def reconfigure(self, cfg: MoodConfig) -> Callable[[], None]:
        """A reload: the new smoothing and thresholds apply from the next frame; the mood held stays."""
        def swap() -> None:
            self.cfg = cfg
        return swap

    @property
    def confidence(self) -> float:
        return self.confidence_of(self.mood)

    @property
    def scores(self) -> dict[str, float]:
        values = self.smoothed if self.smoothed is not None else np.zeros(len(self.labels))
        return {label: round(float(v), 4) for label, v in zip(self.labels, values, strict=False)}

    def update(self, probs: np.ndarray | None, t: float) -> MoodChange | None:
        """Feed one analysed frame (None = no face in it); returns a change when the mood switches."""
        return self._settle(self._candidate(probs, t), t)

    def reset(self, t: float) -> MoodChange | None:
        """Forget everything seen (privacy pause): no_face from `t` on; a change unless already no_face."""
        change = MoodChange(self.mood, NO_FACE, 0.0, t - self.since, t) if self.mood != NO_FACE else None
        self.mood, self.since, self.smoothed, self.last_face_at = NO_FACE, t, None, None
        self._pending, self._pending_since = None, t
        return change

    def _candidate(self, probs: np.ndarray | None, t: float) -> str:
        if probs is None:
            if self.last_face_at is None or t - self.last_face_at >= self.cfg.no_face_after_s:
                self.smoothed = None  # a returning face starts afresh, not from a stale average
                return NO_FACE
            return self.mood  # a face lost for a moment keeps the current mood
        self.last_face_at = t
        a = self.cfg.smoothing
        self.smoothed = probs.copy() if self.smoothed is None else a * probs + (1 - a) * self.smoothed
        top = int(self.smoothed.argmax())
        if self.smoothed[top] < self.cfg.min_confidence:
            return UNCERTAIN
        best = self.labels[top]
        if self.mood in self.labels and best != self.mood:
            current = self.smoothed[self.labels.index(self.mood)]
            if self.smoothed[top] < current + self.cfg.switch_margin:
                return self.mood  # hysteresis: not clearly better than what we have
        return best

    def _settle(self, candidate: str, t: float) -> MoodChange | None:
        if candidate == self.mood:
            self._pending = None
            return None
        if candidate != self._pending:
            self._pending, self._pending_since = candidate, t
        # no_face has already waited no_face_after_s; everything else must hold min_dwell_s
        if candidate != NO_FACE and t - self._pending_since < self.cfg.min_dwell_s:
            return None
        change = MoodChange(self.mood, candidate, self.confidence_of(candidate), t - self.since, t)
        self.mood, self.since, self._pending = candidate, t, None
        return change

    def confidence_of(self, mood: str) -> float:
        """The smoothed score of `mood`; for uncertain the top score; 0 for no_face."""
        if self.smoothed is None or mood == NO_FACE:
            return 0.0
        return float(self.smoothed[self.labels.index(mood)] if mood in self.labels else self.smoothed.max())
