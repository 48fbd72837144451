"""One frame in, faces and emotion probabilities out, with the time each stage took.

The daemon's frame loop and `moodcast preview` both analyse through Analyzer, so the picture that
helps aim the camera shows what the daemon sees."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from moodcast.config import DetectorConfig
from moodcast.vision.classifier import EmotionClassifier, FaceScores
from moodcast.vision.detector import Face, crop_face, make_detector
from moodcast.vision.preprocess import prepare_face


@dataclass(frozen=True)
class ClassifiedFace:
    face: Face
    scores: FaceScores


@dataclass
class Analysis:
    faces: list[Face]  # every face found, largest first
    classified: list[ClassifiedFace]  # the largest face, or every face with [detector] faces = "all"
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def probs(self) -> np.ndarray | None:
        """The largest face's probabilities over classifier.labels; None when no face was found."""
        return self.classified[0].scores.probs if self.classified else None


class Analyzer:
    def __init__(self, detector, classifier: EmotionClassifier, faces_mode: str = "largest"):
        self.detector, self.classifier, self.faces_mode = detector, classifier, faces_mode

    def reconfigure(self, cfg: DetectorConfig) -> Callable[[], None]:
        """A reload: the new detector is built (and fails) here; the returned swap cannot fail."""
        detector = make_detector(cfg)

        def swap() -> None:
            self.detector, self.faces_mode = detector, cfg.faces
        return swap

    def analyse(self, image: np.ndarray) -> Analysis:
        t0 = time.perf_counter()
        faces = sorted(self.detector.detect(image), key=lambda f: f.area, reverse=True)
        t1 = time.perf_counter()
        if not faces:  # no face, no classification: an empty room costs only detection
            return Analysis(faces, [], {"detect": _ms(t0, t1), "preprocess": 0.0, "classify": 0.0})
        chosen = faces if self.faces_mode == "all" else faces[:1]
        inputs = [prepare_face(crop_face(image, face)) for face in chosen]  # only the crops turn gray
        t2 = time.perf_counter()
        classified = [ClassifiedFace(face, self.classifier.scores(x)) for face, x in zip(chosen, inputs, strict=True)]
        t3 = time.perf_counter()
        return Analysis(faces, classified, {"detect": _ms(t0, t1), "preprocess": _ms(t1, t2),
                                            "classify": _ms(t2, t3)})


def _ms(a: float, b: float) -> float:
    return (b - a) * 1000.0
