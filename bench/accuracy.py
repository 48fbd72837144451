"""Mood accuracy in the loop: detector + classifier + tracker on scenes, vs the classifier on the crops.

Each PrivateTest face is held in front of the "camera" for `hold_s` at 5 analysed fps, one after
another, as a person whose expression changes every few seconds. A still frame gives the same
analysis every time, so each scene is analysed once and its result fed to the tracker for every
frame of the hold (virtual time, as the daemon's replay does). The mood at the end of the hold is
the pipeline's answer; a missed face (no_face) or `uncertain` counts as wrong.
"""

from __future__ import annotations

import time

import numpy as np

from bench.scenes import Fer2013, fer_scene, iou
from bench.stages import PERIOD_S
from bench.stats import summary
from moodcast.config import MoodConfig
from moodcast.service.tracker import MoodTracker
from moodcast.vision.analyzer import Analyzer
from moodcast.vision.classifier import EmotionClassifier


def classifier_alone(classifier: EmotionClassifier, fer: Fer2013, indices) -> dict:
    """Top-1 on the original 48x48 crops: against FER2013 labels, and against FER+ majorities by the
    model card's protocol (the faces it drops are not scored), so that it can be set beside `make eval`."""
    hits = hits_plus = scored_plus = 0
    for i in indices:
        mood = classifier.labels[int(classifier.classify(fer.images[i]).argmax())]
        hits += mood == fer.labels[i]
        if fer.ferplus_majority[i] is not None:
            scored_plus += 1
            hits_plus += mood == fer.ferplus_majority[i]
    n = len(indices)
    return {"n": n, "accuracy": _pct(hits, n),
            "n_ferplus": scored_plus, "accuracy_ferplus": _pct(hits_plus, scored_plus)}


def in_the_loop(analyzer: Analyzer, fer: Fer2013, indices, hold_s: float, seed: int = 1) -> dict:
    labels = analyzer.classifier.labels
    tracker = MoodTracker(MoodConfig(), labels)
    steps = max(1, round(hold_s / PERIOD_S))
    found = false_faces = frame_hits = tracked_hits = alone_hits = 0
    ms, t = [], 0.0
    for i in indices:
        scene = fer_scene(fer, int(i), seed)
        t0 = time.perf_counter()
        analysis = analyzer.analyse(scene.image)
        ms.append((time.perf_counter() - t0) * 1e3)
        matches = [iou((f.x, f.y, f.w, f.h), scene.box) >= 0.3 for f in analysis.faces]
        found += any(matches)
        false_faces += matches.count(False)
        if analysis.probs is not None:
            frame_hits += labels[int(analysis.probs.argmax())] == scene.label
        alone_hits += labels[int(analyzer.classifier.classify(fer.images[i]).argmax())] == scene.label
        for _ in range(steps):
            tracker.update(analysis.probs, t)
            t += PERIOD_S
        tracked_hits += tracker.mood == scene.label
    n = len(indices)
    return {
        "n": n, "hold_s": hold_s,
        "classifier_on_crops": _pct(alone_hits, n),
        "detector_found": _pct(found, n), "false_faces": false_faces,
        "detector_plus_classifier": _pct(frame_hits, n),
        "pipeline_with_tracker": _pct(tracked_hits, n),
        "analyse_ms": summary(ms),
    }


def photos(analyzer: Analyzer, scenes) -> dict:
    """The labelled real photos (labels are one person's judgement; a handful, so a sanity check)."""
    labelled = [s for s in scenes if s.label]
    hits = found = 0
    for s in labelled:
        a = analyzer.analyse(s.image)
        found += bool(a.faces)
        hits += a.probs is not None and analyzer.classifier.labels[int(a.probs.argmax())] == s.label
    return {"n": len(labelled), "faces_found": found, "correct": hits}


def _pct(k: int, n: int) -> float:
    return round(100.0 * k / n, 1) if n else 0.0


def sample(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """`n` indices in a shuffled order (0 = all), so consecutive holds show different expressions."""
    order = np.random.default_rng(seed).permutation(n_total)
    return order if n <= 0 else order[:n]
