"""For each bundled sample: every face the default detector (and the Haar fallback) finds, the
classifier's input and its probabilities, at full float precision, one JSON per line.

Between arm64 and x86_64 the face boxes and the int8 classifier's probabilities must be identical.
BlazeFace is a float32 model, and float kernels round differently on NEON and AVX, so its face
score and eye points may differ in the last bits (seen: 1e-7 to 2e-5): `compare` allows 1e-4 there.
The upright crop is cut at those eye points, so a pixel on a rounding edge may come out one grey
level apart (seen: after a change of BlazeFace's resize): the classifier's standardised input may
differ by INPUT_TOLERANCE (about two grey levels of a face's contrast). `compare` says how far apart
both were.

usage: python scores.py OUTFILE          (run with the moodcast venv's Python)
       python scores.py compare A B      (exit 1 on a difference)
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np

import moodcast
from moodcast.config import DetectorConfig
from moodcast.vision.classifier import EmotionClassifier
from moodcast.vision.detector import crop_face, make_detector
from moodcast.vision.preprocess import prepare_face

FLOAT_FIELDS = ("score", "eyes")  # BlazeFace's float32 outputs
INPUT_TOLERANCE = 0.05  # the classifier's input is zero-mean, unit-variance: a grey level is about 0.02


def floats(value) -> list[float]:
    if isinstance(value, (list, tuple)):
        return [f for v in value for f in floats(v)]
    return [] if value is None else [float(value)]


def compare(a_path: str, b_path: str) -> int:
    a = [json.loads(line) for line in open(a_path)]
    b = [json.loads(line) for line in open(b_path)]
    exact = lambda r: {**{k: v for k, v in r.items() if k != "input"},  # noqa: E731
                       "face": {k: v for k, v in r["face"].items() if k not in FLOAT_FIELDS}}
    if len(a) != len(b) or any(exact(x) != exact(y) for x, y in zip(a, b, strict=False)):
        print("scores: faces, boxes, classifier inputs or probabilities differ")
        return 1
    gap = max((abs(u - v) for x, y in zip(a, b, strict=False) for k in FLOAT_FIELDS
               for u, v in zip(floats(x["face"][k]), floats(y["face"][k]), strict=False)), default=0.0)
    pixels = max((float(np.abs(np.subtract(x["input"], y["input"])).max()) for x, y in zip(a, b, strict=True)),
                 default=0.0)
    if gap > 1e-4 or pixels > INPUT_TOLERANCE:
        print(f"scores: BlazeFace's float outputs differ by {gap:.3g}, the classifier inputs by {pixels:.3g}")
        return 1
    print(f"scores: {len(a)} faces: boxes and int8 probabilities identical; BlazeFace's float score and eye "
          f"points within {gap:.2g}, the classifier inputs within {pixels:.2g}")
    return 0


def main() -> int:
    if sys.argv[1] == "compare":
        return compare(*sys.argv[2:4])
    samples = Path(moodcast.__file__).parent / "samples"
    classifier = EmotionClassifier()
    lines = []
    for kind in ("blazeface", "haar"):
        detector = make_detector(DetectorConfig(kind=kind))
        for path in sorted(samples.glob("*.png")):
            image = cv2.imread(str(path))
            for face in detector.detect(image):
                x = prepare_face(crop_face(image, face))
                probs = classifier.predict(x)
                lines.append(json.dumps({
                    "detector": kind, "image": path.name, "face": dataclasses.asdict(face),
                    "input": np.round(x.ravel(), 5).tolist(),
                    "probs": dict(zip(classifier.labels, map(float, probs), strict=False))}, default=float))
    Path(sys.argv[1]).write_text("".join(line + "\n" for line in lines))
    print(f"scores: {len(lines)} faces in {len(list(samples.glob('*.png')))} samples, "
          f"{', '.join(sorted({json.loads(line)['detector'] for line in lines}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
