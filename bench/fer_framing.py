"""Where FER2013 puts the eyes in its 48x48 crops: the constants behind moodcast.vision.detector's upright crop.

Each Training-split face is upscaled to 200 px, centred on a mid-gray 480x480 canvas and given to
BlazeFace; the eye points, as fractions of the face's side, are summarised over the faces found.
    python -m bench.fer_framing --data ../shared/data/fer2013.npz [--faces 600]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from moodcast.config import DetectorConfig
from moodcast.vision.detector import make_detector

CANVAS, SIDE = 480, 200


def eye_geometry(faces48: np.ndarray) -> np.ndarray:
    """(N, 48, 48) faces -> rows of (eye distance, midpoint x, midpoint y, eye-line angle in degrees)."""
    detector = make_detector(DetectorConfig(min_face_px=12, track_frames=0))
    offset = (CANVAS - SIDE) // 2
    rows = []
    for face in faces48:
        canvas = np.full((CANVAS, CANVAS), 128, np.uint8)
        canvas[offset:offset + SIDE, offset:offset + SIDE] = cv2.resize(face, (SIDE, SIDE),
                                                                        interpolation=cv2.INTER_CUBIC)
        found = detector.detect(canvas)
        if not found:
            continue
        (lx, ly), (rx, ry) = max(found, key=lambda f: f.score).eyes
        rows.append((np.hypot(rx - lx, ry - ly) / SIDE, ((lx + rx) / 2 - offset) / SIDE,
                     ((ly + ry) / 2 - offset) / SIDE, np.degrees(np.arctan2(ry - ly, rx - lx))))
    return np.array(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fer_framing", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--faces", type=int, default=600, help="the first N Training faces")
    a = p.parse_args(argv)
    data = np.load(a.data)
    images, usage = data["images"], data["usage"]  # each npz key access decompresses again: read once
    geometry = eye_geometry(images[np.flatnonzero(usage == "Training")[:a.faces]])
    print(f"eyes found on {len(geometry)} of {a.faces} faces; percentiles 10/25/50/75/90:")
    for name, column in zip(("eye distance / side", "midpoint x / side", "midpoint y / side", "angle, degrees"),
                            geometry.T, strict=False):
        print(f"  {name:<20}" + " ".join(f"{v:7.3f}" for v in np.percentile(column, [10, 25, 50, 75, 90])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
