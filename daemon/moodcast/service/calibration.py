"""The household's resting-face calibration in the daemon: started by a command, fed by the frame loop,
stored atomically in the state directory with the model's sha256, applied to the classifier.

Only numbers are kept: the offset (seven values), how many faces it was averaged over, when, and for
which model file. No frame, crop or face is stored, and nothing at all when a calibration fails.
A calibration made with another model file is discarded with a warning: an offset only means
something for the model that measured it. The arithmetic is in moodcast.vision.calibration.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from moodcast.config import ModelConfig
from moodcast.mqtt.payloads import (
    Event,
    calibration_done,
    calibration_failed,
    calibration_started,
    error_event,
    iso,
)
from moodcast.util import JsonFile
from moodcast.vision.calibration import CalibrationFailed, CalibrationSession, Failure, Offset
from moodcast.vision.classifier import EmotionClassifier

log = logging.getLogger("moodcast")
FILE_NAME = "calibration.json"
MAX_BYTES = 4096  # seven numbers and a hash; anything bigger is not ours


class CalibrationRefused(Exception):
    """A calibration cannot start now; str(e) is the command's result message."""


@dataclass(frozen=True)
class Stored:
    """What calibration.json holds."""

    model_sha256: str
    labels: tuple[str, ...]
    offset: tuple[float, ...]  # centred, over `labels`
    faces: int
    created: float  # epoch seconds

    def to_json(self) -> dict[str, Any]:
        return {"model_sha256": self.model_sha256, "labels": list(self.labels), "offset": list(self.offset),
                "faces": self.faces, "created": iso(self.created)}

    @property
    def size(self) -> float:
        return math.hypot(*self.offset)


def _parse(data: object) -> Stored:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    sha, labels, offset, faces = data.get("model_sha256"), data.get("labels"), data.get("offset"), data.get("faces")
    created = data.get("created")
    if not (isinstance(sha, str) and isinstance(labels, list) and all(isinstance(x, str) for x in labels)
            and isinstance(offset, list) and len(offset) == len(labels)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in offset)
            and isinstance(faces, int) and faces > 0 and isinstance(created, str)):
        raise ValueError("expected model_sha256, labels, an offset per label, faces and created")
    when = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    return Stored(sha, tuple(labels), tuple(float(v) for v in offset), faces, when)


class CalibrationFile:
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / FILE_NAME

    def read(self) -> Stored | None:
        """What the file holds; None when there is none. OSError or ValueError when it cannot be read."""
        try:
            data = JsonFile(self.path).read(MAX_BYTES)  # a FIFO put there must not hang the start
        except FileNotFoundError:
            return None
        return _parse(data)

    def load(self, model_sha256: str, labels: tuple[str, ...]) -> Stored | None:
        """The stored calibration for this model, or None: missing, unreadable or made for another model
        (the last two are discarded with a warning, so it is said once)."""
        try:
            stored = self.read()
        except (OSError, ValueError) as e:
            log.warning("%s: unreadable calibration (%s); discarded, run moodcast calibrate again", self.path, e)
            self.clear()
            return None
        if stored is None:
            return None
        if stored.model_sha256 != model_sha256 or stored.labels != labels:
            log.warning("%s: the resting-face calibration was made with another model (sha256 %s, now %s); "
                        "discarded: run moodcast calibrate again", self.path, stored.model_sha256[:12],
                        model_sha256[:12])
            self.clear()
            return None
        return stored

    def save(self, stored: Stored) -> None:
        """Atomically (temporary file, fsync, rename; mode 0600); raises OSError."""
        JsonFile(self.path).save(stored.to_json())

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as e:
            log.error("cannot remove %s (%s)", self.path, e.strerror or e)


class Calibrator:
    """One household calibration for one classifier: restore, start, feed frames, finish, reset."""

    def __init__(self, classifier: EmotionClassifier, state_dir: Path, cfg: ModelConfig):
        self.classifier, self.cfg = classifier, cfg
        self.file = CalibrationFile(state_dir)
        self.stored: Stored | None = None
        self.session: CalibrationSession | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    def restore(self) -> None:
        """At start-up: the stored calibration of this model, applied at [model] calibration_strength."""
        self.stored = self.file.load(self.classifier.sha256, self.labels)
        self._apply()
        if self.stored:
            log.info("restored the resting-face calibration from %s: %d faces, offset %.2f, strength %g",
                     self.file.path, self.stored.faces, self.stored.size, self.cfg.calibration_strength)

    def start(self) -> Event:
        """Begin watching the face from the next frame on; CalibrationRefused when it cannot begin."""
        reference = self.classifier.neutral_reference
        if reference is None:
            raise CalibrationRefused(f"calibrate: the model card of {self.classifier.path.name} has no neutral "
                                     "reference for this model file (python -m edge_model.calibration writes it)")
        if self.session:
            raise CalibrationRefused(f"calibrate: already calibrating ({self.session.remaining_s():.0f} s left)")
        self.session = CalibrationSession(self.labels, reference, self.cfg.calibration_s)
        log.info("resting-face calibration started: %g s", self.cfg.calibration_s)
        return calibration_started(self.cfg.calibration_s)

    def frame(self, faces: int, log_probs: np.ndarray | None, t: float) -> list[Event]:
        """Every analysed frame: the faces found and the largest one's raw log-probabilities."""
        if not self.session:
            return []
        self.session.add(faces, log_probs, t)
        if not self.session.due():
            return []
        session, self.session = self.session, None
        try:
            offset = session.finish()
        except CalibrationFailed as e:
            return [self._failed(e)]
        return self._done(offset)

    def abort(self, reason: Failure, message: str) -> list[Event]:
        """Stop a running calibration (privacy pause, camera lost, reset); nothing is stored."""
        if not self.session:
            return []
        self.session = None
        return [self._failed(CalibrationFailed(reason, message))]

    def reset(self) -> list[Event]:
        """Forget the calibration (and stop one under way): the model's own outputs from now on."""
        events = self.abort(Failure.CANCELLED, "calibration reset before it finished")
        self.stored = None
        self.file.clear()
        self._apply()
        log.info("resting-face calibration reset")
        return events

    def stats(self) -> dict[str, Any]:
        """For the stats payload."""
        fields: dict[str, Any] = {"stored": self.stored is not None, "strength": self.cfg.calibration_strength,
                                  "running": self.session is not None}
        if self.stored:
            fields.update(faces=self.stored.faces, offset_size=round(self.stored.size, 3),
                          since=iso(self.stored.created))
        return fields

    def _done(self, offset: Offset) -> list[Event]:
        stored = Stored(self.classifier.sha256, self.labels, tuple(round(float(v), 5) for v in offset.values),
                        offset.faces, time.time())
        events = []
        try:
            self.file.save(stored)
        except OSError as e:  # applied all the same: a calibration that works until a restart beats none
            text = (f"cannot save the calibration to {self.file.path} ({e.strerror or e}): it applies until "
                    "the next restart or reload")
            log.error(text)
            events.append(error_event("state", text))
        self.stored = stored
        self._apply()
        log.info("resting-face calibration done: %d faces, offset %.2f (%s)", offset.faces, offset.size,
                 ", ".join(f"{k} {v:+.2f}" for k, v in zip(self.labels, offset.values, strict=True)))
        offsets = dict(zip(self.labels, stored.offset, strict=True))
        return [calibration_done(offset.faces, offsets, self.cfg.calibration_strength), *events]

    def _failed(self, e: CalibrationFailed) -> Event:
        log.warning("resting-face calibration failed (%s): %s; nothing stored", e.reason, e.message)
        return calibration_failed(e.reason, e.message, e.faces)

    def _apply(self) -> None:
        strength = self.cfg.calibration_strength
        if self.stored is None or strength == 0:
            self.classifier.set_shift(None)
        else:
            self.classifier.set_shift(strength * np.array(self.stored.offset, np.float32))


def describe(classifier: EmotionClassifier, state_dir: Path, cfg: ModelConfig) -> str:
    """One line for check-config: what the daemon will apply at start-up (the file is only read)."""
    path = CalibrationFile(state_dir).path
    try:
        stored = CalibrationFile(state_dir).read()
    except (OSError, ValueError) as e:
        return f"{path}: unreadable ({str(e)[:120]}); the service discards it: run moodcast calibrate again"
    if classifier.neutral_reference is None:
        reference = "; this model's card has no neutral reference, so none can be made"
    else:
        reference = ""
    if stored is None:
        return f"none (moodcast calibrate, or the Home Assistant button){reference}"
    if stored.model_sha256 != classifier.sha256 or stored.labels != classifier.labels:
        return f"{path} was made with another model; the service discards it: run moodcast calibrate again"
    applied = "off ([model] calibration_strength = 0)" if cfg.calibration_strength == 0 else \
        f"applied at strength {cfg.calibration_strength:g}"
    return (f"{stored.faces} faces on {iso(stored.created)[:16].replace('T', ' ')} UTC, offset {stored.size:.2f}, "
            f"{applied}")
