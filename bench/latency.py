"""Detect + classify latency per detector, one face, int8 on 2 threads:
python -m bench.latency [--model M.tflite] [--rounds 3]

The real-face scenes (the photos scaled so the face is 40-200 px, bench/real_scenes.py) and the
photos themselves, as JPEG as a webcam sends them, go through bench.stages - the same per-frame
code `make bench` times - for each detector in turn, frame by frame, so load hits all alike.
Frames where a detector finds exactly one face count. Needs ../shared/data/frames.

Then the classifier alone on one face crop, back to back and paced as the daemon runs it (one face
every 1/5 s), on 1 and 2 threads: paced, LiteRT's worker thread sleeps between frames.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench import stages
from bench.real_scenes import real_scenes
from bench.scenes import ROOT, encode_jpeg, photo_scenes
from bench.stats import summary
from moodcast.config import DetectorConfig
from moodcast.vision.classifier import EmotionClassifier, bundled_model

PACED_S = 0.2  # the daemon's default 5 analysed frames per second

# unrelated frames: each searched whole (track_frames = 0), the latency of a face new to the camera
DETECTORS = {"blazeface full (default)": DetectorConfig(track_frames=0),
             "haar": DetectorConfig(kind="haar", min_face_px=60)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="int8 .tflite (default: the bundled one)")
    p.add_argument("--frames", type=Path, default=ROOT.parent / "shared" / "data" / "frames")
    p.add_argument("--scenes", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    photos = photo_scenes(a.frames)
    if not photos:
        raise SystemExit(f"{a.frames}: no photos with labels.csv")
    model = a.model or bundled_model()
    frames = [(encode_jpeg(s.image), "real") for s in real_scenes(photos, a.scenes) + photos] * a.rounds
    configs = [stages.load_config(name, model, 2, d) for name, d in DETECTORS.items()]
    stages.run_stages(configs, frames, None)
    print(f"model {model.name}, {len(frames)} frames per detector:")
    for c in configs:
        r = stages.report(c)
        one, det, cls = r["one_face_detect_classify_ms"], r["stages_ms"]["detect"], r["stages_ms"]["classify"]
        print(f"  {c.name:<26} detect+classify, one face: p50 {one['p50']:.1f} ms, p95 {one['p95']:.1f} ms "
              f"(n={one['n']}); detect p50 {det['p50']:.2f}, classify p50 {cls['p50']:.2f} ms")
    print("classify alone, one face:")
    for threads in (1, 2):
        for gap_s in (0.0, PACED_S):
            ms = classify_ms(model, threads, gap_s)
            print(f"  {threads} thread(s), {'paced at 5 fps' if gap_s else 'back to back':<15} p50 {ms['p50']:.2f} ms, "
                  f"p95 {ms['p95']:.2f} ms (n={ms['n']})")
    return 0


def classify_ms(model: Path, threads: int, gap_s: float, n: int = 50) -> dict:
    """Latency of classifying one (standardised noise) face, with `gap_s` of sleep before each."""
    classifier = EmotionClassifier(model, threads)
    face = np.random.default_rng(0).standard_normal((48, 48, 1)).astype(np.float32)
    classifier.predict(face)
    times = []
    for _ in range(n):
        time.sleep(gap_s)
        t0 = time.perf_counter()
        classifier.predict(face)
        times.append((time.perf_counter() - t0) * 1e3)
    return summary(times)


if __name__ == "__main__":
    raise SystemExit(main())
