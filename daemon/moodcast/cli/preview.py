"""`moodcast preview`: one frame with face boxes and scores, saved locally for aiming the camera.

The frame is the one the daemon would get, analysed by the daemon's own Analyzer, so what the
picture shows is what `run` would see. The only place moodcast writes an image, and only because
the user asked for it.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from moodcast.config import Config
from moodcast.errors import MoodcastError
from moodcast.util import file_kind
from moodcast.vision.analyzer import Analyzer
from moodcast.vision.camera import Camera, Frame, make_live_source
from moodcast.vision.classifier import EmotionClassifier
from moodcast.vision.detector import make_detector


class OutputError(MoodcastError):
    """The preview cannot be saved where the user asked; worded for the user."""


def grab_one_frame(cfg: Config) -> np.ndarray:
    """The first frame the daemon would analyse. A replay comes through the daemon's own Camera, so
    it is shrunk to [camera] width x height as in `run`; a live camera is made and opened as the
    Camera does it (make_live_source) and read once: a failure is reported, not retried."""
    if cfg.camera.source == "replay":
        camera = Camera(cfg.camera, threading.Event())
        camera.check()  # nothing to replay: the error `run` gives
        frames = camera.frames()
        try:
            first = next(frames)  # a replay that is not paused yields a frame first
        finally:
            frames.close()
        assert isinstance(first, Frame)
        return first.image
    source = make_live_source(cfg.camera)
    source.open()
    try:
        return source.read()
    finally:
        source.close()


def save_preview(cfg: Config, output: str | Path) -> list[str]:
    output = check_output(output)  # before the camera is touched: a bad -o costs nothing
    image = grab_one_frame(cfg)
    classifier = EmotionClassifier(cfg.model.path or None, cfg.model.num_threads)
    analysis = Analyzer(make_detector(cfg.detector), classifier, cfg.detector.faces).analyse(image)
    lines = [f"{image.shape[1]}x{image.shape[0]} frame, {len(analysis.faces)} face(s)"]
    thickness = max(2, image.shape[1] // 400)
    for i, face in enumerate(analysis.faces, 1):
        colour = (0, 200, 0) if i == 1 else (0, 200, 255)
        cv2.rectangle(image, (face.x, face.y), (face.x + face.w, face.y + face.h), colour, thickness)
        where = f"face {i}: {face.w}x{face.h} at ({face.x},{face.y})"
        if i > len(analysis.classified):  # [detector] faces = "largest": the daemon classifies the largest only
            lines.append(f'{where}: not classified ([detector] faces = "{cfg.detector.faces}")')
            continue
        probs = analysis.classified[i - 1].scores.probs
        top = sorted(zip(classifier.labels, probs, strict=True), key=lambda p: -p[1])[:3]
        cv2.putText(image, f"{top[0][0]} {top[0][1]:.0%}", (face.x, max(20, face.y - 8)), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.6, face.w / 250), colour, thickness)
        lines.append(f"{where}: " + ", ".join(f"{name} {p:.0%}" for name, p in top))
    if cfg.detector.faces == "all":
        lines.append(f"each face is smoothed on its own; [mood] room = {cfg.mood.room} gives the room's mood")
    elif analysis.probs is not None:
        lines.append("scores the mood tracker gets: "
                     + ", ".join(f"{name} {p:.0%}" for name, p in zip(classifier.labels, analysis.probs, strict=True)))
    ok, jpeg = cv2.imencode(".jpg", image)
    if not ok:
        raise OutputError(f"{output}: could not encode the frame as JPEG")
    write_private(output, jpeg.tobytes())
    lines.append(f"saved {output} (local only; delete it when done)")
    return lines


def check_output(output: str | Path) -> Path:
    """Where the preview may go: a new path, or a regular file of this user's (it is replaced, see
    write_private). Never a directory, a symbolic link, a FIFO, a device or a socket: renaming over
    /dev/null as root would replace the machine's /dev/null with a camera frame."""
    text = str(output)
    path = Path(output)
    if text.endswith(os.sep) or path.is_dir():
        raise OutputError(f"{text}: is a directory; give a file name, e.g. -o {path / 'moodcast-preview.jpg'}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError as e:
        raise OutputError(f"{text}: cannot write here ({e.strerror or e})") from None
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{text}: is a symbolic link; refusing to write a camera frame through it")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{text}: is {file_kind(st.st_mode)}, not a regular file; give a new file name")
    if st.st_uid != os.geteuid():
        raise OutputError(f"{text}: belongs to another user (uid {st.st_uid}); refusing to replace it")
    return path


def write_private(path: Path, data: bytes) -> None:
    """A new file, mode 0600, renamed into place: a camera frame is for its owner only. An existing
    regular file of ours is replaced, never written into (it keeps neither its content nor its loose
    mode); whatever else was put there meanwhile is refused again right before the rename."""
    check_output(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # O_EXCL, 0600
    except OSError as e:
        raise OutputError(f"{path}: cannot write here ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        check_output(path)
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
