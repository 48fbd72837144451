"""Resting-face calibration: the arithmetic, with no I/O (the daemon's side is service/calibration.py).

People's relaxed faces differ, and some read as sad or angry to any expression model. While a
person relaxes in front of the camera, the classifier's log-probabilities are averaged; the offset
is how far that average lies from the model's own average over relaxed faces (the neutral reference:
FER+ neutral PublicTest faces, in the model's card, written by edge_model.calibration). From then on
`strength × offset` is subtracted from every face's log-probabilities before the softmax.

Log-probabilities equal the logits up to one constant per face, and a constant added to every
class changes no softmax, so an offset is only defined up to a constant: it is kept centred (its
classes sum to 0). The int8 model gives probabilities in steps of 1/256; a 0 is read as one step,
never as log 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moodcast.util import TextEnum

# A calibration needs this many analysed frames with exactly one face (20 s at the idle rate of
# 1 fps; at 5 fps a person in view for 20 s gives 100).
MIN_FACES = 20
# A relaxed face is not an active expression: when the model is sure of one of these (more than of all
# the others together) in this share of the frames, the person was smiling or surprised, and calibrating
# on it would lower every smile after it. Sad, angry and the rest, or a face that reads a little
# surprised, are what some resting faces look like to the model: exactly what is to be corrected.
ACTIVE_EXPRESSIONS = ("happy", "surprise")
ACTIVE_PROBABILITY = 0.5
NOT_RELAXED_SHARE = 0.8


class Failure(TextEnum):
    """Why a calibration stored nothing (`calibration_failed.reason`)."""

    NO_FACE = "no_face"
    TOO_FEW_FACES = "too_few_faces"
    SEVERAL_FACES = "several_faces"
    NOT_RELAXED = "not_relaxed"
    PAUSED = "paused"
    CAMERA = "camera"
    CANCELLED = "cancelled"


class CalibrationFailed(Exception):
    def __init__(self, reason: Failure, message: str, faces: int = 0):
        super().__init__(message)
        self.reason, self.message, self.faces = reason, message, faces


def log_probabilities(y: np.ndarray, floor: float, logits: bool) -> np.ndarray:
    """A model output -> log-probabilities (up to a constant): logits as they are, probabilities
    clamped at `floor` (the output's quantization step), so that a 0 never becomes -inf."""
    y = np.asarray(y, np.float32)
    return y - y.max() if logits else np.log(np.maximum(y, floor))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def centred(v: np.ndarray) -> np.ndarray:
    return v - v.mean(axis=-1, keepdims=True)


def resting_offset(mean_log_probs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """How far a household's relaxed faces read from the model's typical neutral output (centred)."""
    return centred(np.asarray(mean_log_probs, np.float64) - np.asarray(reference, np.float64)).astype(np.float32)


def calibrated(log_probs: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Probabilities after the household's shift (strength × offset) is taken out of the log-probabilities."""
    return softmax(log_probs - shift)


@dataclass(frozen=True)
class Offset:
    values: np.ndarray  # centred, over the model's labels
    faces: int  # the frames it was averaged over

    @property
    def size(self) -> float:
        """Euclidean length in log-probability units (nats): 0 = the household reads as the reference."""
        return float(np.linalg.norm(self.values))


class CalibrationSession:
    """Collects one calibration: the log-probabilities of each frame with exactly one face, for
    `duration_s` of frame time from the first frame; `finish()` gives the offset or says why not."""

    def __init__(self, labels: Sequence[str], reference: np.ndarray, duration_s: float):
        self.labels, self.reference = tuple(labels), np.asarray(reference, np.float32)
        self.duration_s = duration_s
        self.started: float | None = None  # frame time (a replay's is virtual, a camera's monotonic)
        self.last = 0.0
        self._single: list[np.ndarray] = []
        self._several = 0  # frames with more than one face
        self._empty = 0

    def add(self, faces: int, log_probs: np.ndarray | None, t: float) -> None:
        """One analysed frame at frame time `t`: `faces` found in it, and the largest one's log-probabilities."""
        self.started = t if self.started is None else self.started
        self.last = t
        if faces == 0 or log_probs is None:
            self._empty += 1
        elif faces > 1:
            self._several += 1
        else:
            self._single.append(np.asarray(log_probs, np.float32))

    def remaining_s(self) -> float:
        return self.duration_s if self.started is None else max(0.0, self.started + self.duration_s - self.last)

    def due(self) -> bool:
        return self.remaining_s() == 0.0

    def finish(self) -> Offset:
        """The offset of the faces seen; CalibrationFailed when they cannot give a trustworthy one."""
        single = len(self._single)
        if self._several > single:  # the frames with one face may show either person
            raise CalibrationFailed(Failure.SEVERAL_FACES, f"several faces were in view in {self._several} of "
                                    f"{self._several + single + self._empty} frames: calibrate with one person "
                                    "in front of the camera", single)
        if single < MIN_FACES:
            if single == 0:
                raise CalibrationFailed(Failure.NO_FACE, "no face was seen: sit in front of the camera, "
                                        "look at it and relax", 0)
            raise CalibrationFailed(Failure.TOO_FEW_FACES, f"a face was seen in only {single} frames "
                                    f"(at least {MIN_FACES} are needed): stay in view for the whole time", single)
        probs = softmax(np.stack(self._single))
        for label in ACTIVE_EXPRESSIONS:
            if label not in self.labels:
                continue
            share = float(np.mean(probs[:, self.labels.index(label)] >= ACTIVE_PROBABILITY))
            if share >= NOT_RELAXED_SHARE:
                raise CalibrationFailed(Failure.NOT_RELAXED, f"the face looked {label} in {share:.0%} of the "
                                        "frames, not relaxed: calibrate with a resting face", single)
        return Offset(resting_offset(np.mean(self._single, axis=0), self.reference), single)
