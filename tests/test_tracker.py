"""The mood tracker on synthetic probability streams (5 analysed frames per second)."""

import numpy as np
import pytest

from moodcast.config import MoodConfig
from moodcast.labels import NO_FACE, UNCERTAIN
from moodcast.service.tracker import MoodTracker

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FPS = 5.0


def probs(**scores):
    p = np.full(len(LABELS), 0.0, np.float32)
    for k, v in scores.items():
        p[LABELS.index(k)] = v
    rest = (1 - p.sum()) / (p == 0).sum()
    p[p == 0] = rest
    return p


def feed(tracker, frames, start=0.0):
    changes, t = [], start
    for p in frames:
        change = tracker.update(p, t)
        if change:
            changes.append(change)
        t += 1 / FPS
    return changes, t


def test_starts_without_a_face_and_settles_on_a_clear_mood():
    tracker = MoodTracker(MoodConfig(), LABELS)
    assert tracker.mood == NO_FACE
    changes, _ = feed(tracker, [probs(happy=0.9)] * 10)
    assert [c.mood for c in changes] == ["happy"]
    assert changes[0].previous == NO_FACE
    assert changes[0].timestamp == pytest.approx(0.6)  # min_dwell_s after the first face frame


@pytest.mark.parametrize("seed", range(5))
def test_blips_of_up_to_two_frames_do_not_flicker(seed):
    tracker = MoodTracker(MoodConfig(), LABELS)
    feed(tracker, [probs(happy=0.8)] * 10)
    rng = np.random.default_rng(seed)
    stream = []
    while len(stream) < 300:  # a weakly happy face with misread blips of 1-2 frames
        stream += [probs(happy=0.55, neutral=0.35)] * int(rng.integers(1, 4))
        stream += [probs(neutral=0.6, happy=0.3)] * int(rng.integers(1, 3))
    changes, _ = feed(tracker, stream, start=2.0)
    assert changes == []


def test_switch_needs_margin_and_dwell():
    tracker = MoodTracker(MoodConfig(), LABELS)
    _, t = feed(tracker, [probs(happy=0.9)] * 10)
    changes, _ = feed(tracker, [probs(sad=0.9)] * 10, start=t)
    assert [c.mood for c in changes] == ["sad"]
    reaction = changes[0].timestamp - t
    assert 0.6 <= reaction <= 1.2
    assert changes[0].held_for_s > 0


def test_low_confidence_becomes_uncertain():
    tracker = MoodTracker(MoodConfig(min_confidence=0.5), LABELS)
    changes, _ = feed(tracker, [probs(happy=0.3, sad=0.3)] * 10)
    assert [c.mood for c in changes] == [UNCERTAIN]


def test_no_face_after_timeout_and_brief_dropouts_are_ignored():
    cfg = MoodConfig(no_face_after_s=2.0)
    tracker = MoodTracker(cfg, LABELS)
    _, t = feed(tracker, [probs(happy=0.9)] * 10)
    changes, t = feed(tracker, [None] * 5 + [probs(happy=0.9)] * 2, start=t)  # 1 s gap
    assert changes == [] and tracker.mood == "happy"
    changes, _ = feed(tracker, [None] * 15, start=t)
    assert [c.mood for c in changes] == [NO_FACE]
    assert changes[0].timestamp - t == pytest.approx(2.0, abs=0.21)
    assert tracker.scores["happy"] == 0.0  # a returning face starts afresh
