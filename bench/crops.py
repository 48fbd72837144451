"""Which face crop the classifier does best with: python -m bench.crops --data fer2013.npz [--faces 400]

Each PrivateTest face is upscaled to 80-200 px, tilted by up to +-20 degrees (heads tilt; FER2013's
faces are mostly level) and placed on a mid-gray 640x480 frame; BlazeFace looks for it as the daemon
does: a whole-frame search, then two frames following it with the short-range model. On each of
those frames, the classifier is scored three ways: on the eye-levelled crop framed as FER2013 frames
its faces (the default), on BlazeFace's square box, and - the ceiling - on the original 48x48 crop.
Both crops see the same faces, so their difference is the crop's alone; whether it is more than
chance is McNemar's exact test on the faces that only one of the two crops gets right. (Pasted FER faces in the
bench's coloured scenes are too few for this: BlazeFace finds few of those, see docs/performance.md.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np

from bench.accuracy import sample
from bench.scenes import HEIGHT, WIDTH, Fer2013, iou
from moodcast.config import DetectorConfig
from moodcast.vision.classifier import EmotionClassifier
from moodcast.vision.detector import crop_face, make_detector


def placed(face48: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    side = int(rng.integers(80, 201))
    x, y = int(rng.integers(0, WIDTH - side)), int(rng.integers(0, HEIGHT - side))
    frame = np.full((HEIGHT, WIDTH), 128, np.uint8)
    frame[y:y + side, x:x + side] = cv2.resize(face48, (side, side), interpolation=cv2.INTER_CUBIC)
    centre = (x + side / 2, y + side / 2)
    tilt = cv2.getRotationMatrix2D(centre, float(rng.uniform(-20, 20)), 1.0)
    return cv2.warpAffine(frame, tilt, (WIDTH, HEIGHT), borderValue=128), (x, y, side, side)


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar test: the chance of a split at least this uneven of the b + c discordant
    pairs if either crop were as likely to be the one that is right (binomial, p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


FRAMES = ("whole-frame search", "followed, 1st", "followed, 2nd")
CROPS = ("upright FER-framed crop", "box crop", "original 48x48 crop")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.crops", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--faces", type=int, default=400, help="PrivateTest faces (the bench's shuffled order; 0 = all)")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    fer, classifier, rng = Fer2013(a.data), EmotionClassifier(num_threads=2), np.random.default_rng(11)
    hits = {frame: dict.fromkeys(CROPS, 0) for frame in FRAMES}
    only = {frame: {"upright": 0, "box": 0} for frame in FRAMES}  # faces only that crop classifies right
    found, indices = 0, sample(len(fer), a.faces)
    for i in indices:
        frame, box = placed(fer.images[i], rng)
        seen = follow(make_detector(DetectorConfig(min_face_px=40)), frame, box)
        if seen is None:
            continue
        found += 1
        for name, face in zip(FRAMES, seen, strict=True):
            crops = {CROPS[0]: crop_face(frame, face), CROPS[1]: crop_face(frame, dataclasses.replace(face, eyes=None)),
                     CROPS[2]: fer.images[i]}
            right = {c: classifier.labels[int(classifier.classify(crop).argmax())] == fer.labels[i]
                     for c, crop in crops.items()}
            for c in CROPS:
                hits[name][c] += right[c]
            only[name]["upright"] += right[CROPS[0]] and not right[CROPS[1]]
            only[name]["box"] += right[CROPS[1]] and not right[CROPS[0]]
    result = {"faces": a.faces, "found": found,
              "accuracy_pct": {f: {c: round(100 * v / max(found, 1), 1) for c, v in h.items()}
                               for f, h in hits.items()},
              "only_right_with": only,
              "mcnemar_p": {f: round(mcnemar_p(o["upright"], o["box"]), 4) for f, o in only.items()}}
    print(f"BlazeFace found and followed {found} of {len(indices)} placed, tilted FER faces; accuracy on those "
          "(FER2013 labels):")
    for name in FRAMES:
        pct, o = result["accuracy_pct"][name], only[name]
        print(f"  {name:<20}" + "  ".join(f"{c} {pct[c]:.1f} %" for c in CROPS)
              + f"; right only upright {o['upright']}, only with the box {o['box']}: "
                f"McNemar exact p = {result['mcnemar_p'][name]}")
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))
    return 0


def follow(detector, frame: np.ndarray, box) -> list | None:
    """The placed face as the daemon sees a still: found by a whole-frame search, then followed (the
    short-range model, whose box differs from the full-range one's) for len(FRAMES) - 1 frames."""
    seen = []
    for _ in FRAMES:
        faces = [f for f in detector.detect(frame) if iou((f.x, f.y, f.w, f.h), box) >= 0.3]
        if not faces:
            return None
        seen.append(max(faces, key=lambda f: f.score))
    return seen


if __name__ == "__main__":
    raise SystemExit(main())
