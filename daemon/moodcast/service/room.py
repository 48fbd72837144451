"""A room's mood when several people are in view ([detector] faces = "all", [mood] room).

Each face the detector follows (its track number) gets its own MoodTracker, so every face is smoothed,
held and settled exactly as a single face is. The room's mood is then read from the faces' settled
moods by a policy:

- largest: the largest face's mood (it changes to another face only when that one is clearly larger);
- majority: the mood most faces hold (a tie keeps the room's current mood, else the larger face's);
- any_negative: the most negative mood at least one face holds, for "uplift" music in a family room:
  sad, then angry, fear and disgust. Sad comes first because its uplift goes furthest; the moods the
  model finds least reliably (fear, disgust: README) come last, so one misread face decides less
  often. When no face holds one of them, the majority's mood.

A face the detector no longer sees keeps its mood for [mood] no_face_after_s, as a single face does,
and is then forgotten. Only moods leave the tracker: no face, crop or identity is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from moodcast.config import MoodConfig
from moodcast.labels import MOODS, NO_FACE, UNCERTAIN
from moodcast.service.tracker import MoodChange, MoodTracker

ROOM_POLICIES = ("largest", "majority", "any_negative")
NEGATIVE = ("sad", "angry", "fear", "disgust")  # most negative first (see above)
LARGER_BY = 1.2  # another face must be this much larger (in area) to become the largest


class SeenFace(NamedTuple):
    """One classified face of a frame."""

    track: int  # the detector's track number
    area: int  # pixels of its box
    probs: np.ndarray  # over the tracker's labels


@dataclass(frozen=True)
class RoomState:
    """What `state.room` reports: the policy in force, every policy's mood, and each face's mood."""

    policy: str
    moods: tuple[tuple[str, str], ...]  # (policy, mood), in ROOM_POLICIES order
    face_moods: tuple[str, ...]  # largest face first

    def body(self) -> dict[str, Any]:
        return {"policy": self.policy, "moods": dict(self.moods), "face_moods": list(self.face_moods)}


@dataclass
class _Face:
    tracker: MoodTracker
    area: int


class RoomTracker:
    """The same questions as MoodTracker answers (mood, confidence, scores, changes), for a room."""

    def __init__(self, cfg: MoodConfig, labels: tuple[str, ...], start: float = 0.0):
        self.cfg, self.labels = cfg, labels
        self.mood, self.since = NO_FACE, start
        self.last_face_at: float | None = None
        self._faces: dict[int, _Face] = {}
        self._largest: int | None = None
        self._deciders: list[int] = []  # the faces whose scores stand for the room's mood

    def reconfigure(self, cfg: MoodConfig) -> Callable[[], None]:
        """A reload: the new smoothing, thresholds and policy apply from the next frame."""
        swaps = [face.tracker.reconfigure(cfg) for face in self._faces.values()]

        def swap() -> None:
            self.cfg = cfg
            for s in swaps:
                s()
        return swap

    def update(self, faces: Sequence[SeenFace], t: float) -> MoodChange | None:
        """One analysed frame's classified faces; returns a change when the room's mood switches."""
        for seen in faces:
            face = self._faces.setdefault(seen.track, _Face(MoodTracker(self.cfg, self.labels, start=t), seen.area))
            face.area = seen.area
            face.tracker.update(seen.probs, t)
        present = {seen.track for seen in faces}
        for track, face in list(self._faces.items()):
            if track not in present:
                face.tracker.update(None, t)
                if self._gone(face.tracker, t):
                    del self._faces[track]
        if faces:
            self.last_face_at = t
        self._largest = self._pick_largest(faces)
        mood, self._deciders = self._results()[self.cfg.room]
        if mood == self.mood:
            return None
        change = MoodChange(self.mood, mood, self.confidence_of(mood), t - self.since, t)
        self.mood, self.since = mood, t
        return change

    def reset(self, t: float) -> MoodChange | None:
        """Forget every face (privacy pause): no_face from `t` on."""
        change = MoodChange(self.mood, NO_FACE, 0.0, t - self.since, t) if self.mood != NO_FACE else None
        self._faces.clear()
        self._largest, self._deciders = None, []
        self.mood, self.since, self.last_face_at = NO_FACE, t, None
        return change

    def _gone(self, tracker: MoodTracker, t: float) -> bool:
        """Not seen for no_face_after_s (a face that had not settled on a mood yet: at once)."""
        if tracker.mood != NO_FACE:
            return False
        return tracker.last_face_at is None or t - tracker.last_face_at >= self.cfg.no_face_after_s

    @property
    def confidence(self) -> float:
        return self.confidence_of(self.mood)

    def confidence_of(self, mood: str) -> float:
        held = [self._faces[track].tracker.confidence_of(mood) for track in self._deciders if track in self._faces]
        return float(np.mean(held)) if held else 0.0

    @property
    def scores(self) -> dict[str, float]:
        """The mean smoothed scores of the faces that decide the room's mood (zeros without one)."""
        held = [self._faces[track].tracker.scores for track in self._deciders if track in self._faces]
        return {label: round(float(np.mean([s[label] for s in held])), 4) if held else 0.0 for label in self.labels}

    def state(self) -> RoomState:
        results = self._results()
        ordered = sorted(self._faces.values(), key=lambda f: f.area, reverse=True)
        return RoomState(self.cfg.room, tuple((policy, results[policy][0]) for policy in ROOM_POLICIES),
                         tuple(face.tracker.mood for face in ordered))

    # -- the policies --------------------------------------------------------------------------------
    def _pick_largest(self, faces: Sequence[SeenFace]) -> int | None:
        """The largest face of this frame; the one before stays unless another is LARGER_BY larger."""
        if not faces:
            return self._largest if self._largest in self._faces else None
        biggest = max(faces, key=lambda f: f.area)
        current = next((f for f in faces if f.track == self._largest), None)
        if current is not None and biggest.area < LARGER_BY * current.area:
            return current.track
        return biggest.track

    def _results(self) -> dict[str, tuple[str, list[int]]]:
        """Every policy's mood and the faces it comes from."""
        held = {track: face.tracker.mood for track, face in self._faces.items() if face.tracker.mood in MOODS}
        none: tuple[str, list[int]] = (
            UNCERTAIN if any(f.tracker.mood == UNCERTAIN for f in self._faces.values()) else NO_FACE, [])
        largest = none
        if self._largest in self._faces:
            mood = self._faces[self._largest].tracker.mood
            largest = (mood, [self._largest] if mood in MOODS else [])
        majority = self._majority(held, largest[0]) if held else none
        negative = next(((mood, [t for t, m in held.items() if m == mood]) for mood in NEGATIVE
                         if mood in held.values()), majority)
        return {"largest": largest, "majority": majority, "any_negative": negative}

    def _majority(self, held: dict[int, str], largest: str) -> tuple[str, list[int]]:
        counts = Counter(held.values())
        top = max(counts.values())
        tied = [mood for mood, n in counts.items() if n == top]
        if self.mood in tied:
            mood = self.mood  # a tie does not flip the room back and forth
        elif largest in tied:
            mood = largest
        else:  # the mood of the largest face among those holding a tied mood
            mood = held[max((t for t, m in held.items() if m in tied), key=lambda t: self._faces[t].area)]
        return mood, [t for t, m in held.items() if m == mood]


def make_tracker(faces_mode: str, cfg: MoodConfig, labels: tuple[str, ...], start: float = 0.0
                 ) -> MoodTracker | RoomTracker:
    """One tracker for the largest face, or a room of them for [detector] faces = "all"."""
    return RoomTracker(cfg, labels, start) if faces_mode == "all" else MoodTracker(cfg, labels, start)
