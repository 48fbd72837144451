"""Benchmark frames: FER2013 faces placed into 640x480 scenes, and the real photos in shared/data.

A FER2013 face is only 48x48 and fills its whole crop; a webcam at 0.45-1.5 m sees a 60-200 px
face somewhere in a 640x480 frame. Upscaling the face and pasting it (with a feathered edge, so no hard
square helps the detector) into a blurred background forces the Haar detector to find it, as in
the field. Scenes are made on demand from (split index, seed): nothing is written to the repo.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_model.dataset import Split, ferplus_eval_rows
from moodcast.labels import MOODS

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "daemon" / "moodcast" / "samples"
WIDTH, HEIGHT = 640, 480
# Face side in the frame. A 640-px webcam with a ~70 degree horizontal field sees a ~16 cm wide
# face as about 40 px at 2.2 m, 60 px at 1.5 m, 90 px at 1 m and 200 px at 0.45 m: a sofa to a desk.
FACE_PX = (40, 200)
FERPLUS_TO_MOOD = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear")  # vote columns 0-6


@dataclass
class Scene:
    image: np.ndarray  # BGR, WIDTH x HEIGHT
    box: tuple[int, int, int, int] | None  # where the face was placed (x, y, w, h); None for photos
    label: str | None  # FER2013 label (or the photo's label), a mood name
    source: str  # "fer2013:<row>" or "frames/<file>"


class Fer2013:
    """The PrivateTest split (the one no model saw), with FER+ majorities."""

    def __init__(self, path: Path):
        data = np.load(path)
        rows = np.flatnonzero(data["usage"] == "PrivateTest")
        self.rows = rows
        self.images = data["images"][rows]
        self.labels = [MOODS[i] for i in data["labels"][rows]]
        votes = data["ferplus_votes"][rows].astype(int)
        self.votes_top = votes[:, :7].max(axis=1)
        self.ferplus = [FERPLUS_TO_MOOD[i] for i in votes[:, :7].argmax(axis=1)]  # the most votes: picks scenes
        # the model card's FER+ protocol (make eval): the majority mood, "contempt" (always a miss), or
        # None for a face the protocol drops (no majority, unknown, not a face)
        keep, classes = ferplus_eval_rows(Split(self.images, data["labels"][rows], votes))
        self.ferplus_majority = [None if not kept else MOODS[c] if c >= 0 else "contempt"
                                 for kept, c in zip(keep, classes, strict=True)]

    def __len__(self) -> int:
        return len(self.rows)

    def clear(self, mood: str, min_votes: int = 7) -> np.ndarray:
        """Indices whose label is `mood` and at least `min_votes` of 10 FER+ annotators agree."""
        return np.array([i for i in range(len(self)) if self.labels[i] == mood and self.ferplus[i] == mood
                         and self.votes_top[i] >= min_votes], dtype=int)


def background(seed: int) -> np.ndarray:
    """A face-free 640x480 backdrop: a random crop of the bundled coffee photo, blurred, with sensor noise."""
    rng = np.random.default_rng(seed)
    src = cv2.imread(str(SAMPLES / "02_coffee.png"), cv2.IMREAD_COLOR)
    scale = max(WIDTH / src.shape[1], HEIGHT / src.shape[0]) * rng.uniform(1.0, 1.6)
    big = cv2.resize(src, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    x = int(rng.integers(0, big.shape[1] - WIDTH + 1))
    y = int(rng.integers(0, big.shape[0] - HEIGHT + 1))
    image = big[y:y + HEIGHT, x:x + WIDTH]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = cv2.GaussianBlur(image, (0, 0), 5)
    noise = rng.normal(0, 3, image.shape)  # a real sensor is never clean; JPEG sizes stay realistic
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def place_face(backdrop: np.ndarray, face48: np.ndarray, seed: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Paste an upscaled grayscale face at a random place; returns the frame and the face box."""
    rng = np.random.default_rng(seed)
    side = int(rng.integers(FACE_PX[0], FACE_PX[1] + 1))
    x = int(rng.integers(0, WIDTH - side + 1))
    y = int(rng.integers(0, HEIGHT - side + 1))
    face = cv2.resize(face48, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)[..., None]
    alpha = _feather(side)[..., None]
    frame = backdrop.copy()
    region = frame[y:y + side, x:x + side].astype(np.float32)
    frame[y:y + side, x:x + side] = (alpha * face + (1 - alpha) * region).astype(np.uint8)
    return frame, (x, y, side, side)


def _feather(side: int) -> np.ndarray:
    """1 inside, fading to 0 over the outer 8 % of each edge."""
    ramp = np.clip(np.minimum(np.arange(side), np.arange(side)[::-1]) / max(1.0, 0.08 * side), 0, 1)
    return np.minimum.outer(ramp, ramp).astype(np.float32)


def fer_scene(fer: Fer2013, index: int, seed: int = 0) -> Scene:
    frame, box = place_face(background(seed * 100003 + index), fer.images[index], seed * 100019 + index)
    return Scene(frame, box, fer.labels[index], f"fer2013:{int(fer.rows[index])}")


def empty_scene(seed: int = 0) -> Scene:
    return Scene(background(seed), None, None, "background")


def photo_scenes(frames_dir: Path | None) -> list[Scene]:
    """The real photos, letterboxed into 640x480 as a webcam would frame them; labels from labels.csv."""
    if not frames_dir or not (frames_dir / "labels.csv").is_file():
        return []
    with (frames_dir / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    scenes = []
    for row in rows:
        image = cv2.imread(str(frames_dir / row["file"]), cv2.IMREAD_COLOR)
        if image is None:
            continue
        label = row["label"].strip().lower() or None
        scenes.append(Scene(letterbox(image), None, label if label in MOODS else None, f"frames/{row['file']}"))
    return scenes


def letterbox(image: np.ndarray) -> np.ndarray:
    scale = min(WIDTH / image.shape[1], HEIGHT / image.shape[0])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    y, x = (HEIGHT - small.shape[0]) // 2, (WIDTH - small.shape[1]) // 2
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    return out


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """What a USB webcam sends (MJPEG); decoding it is the capture stage's real work."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = w * h
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0
