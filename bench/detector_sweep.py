"""Detectors and their settings vs cost and recall: the data for choosing [detector] defaults.

BlazeFace's cost is fixed by its input size (short range 128 px, full range 192 px, whatever the
frame); the Haar cascade's by how many pyramid levels it scans (min_face_px, scale_factor,
detect_width). Each candidate is run on the same frames, rotating which goes first, and reported
with what it finds: placed FER faces (IoU >= 0.3), by face size, real photos with a face found,
and false faces (boxes on empty backgrounds or away from the placed FER face).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import cv2

from bench.scenes import Scene, iou
from bench.stats import summary
from moodcast.config import DetectorConfig
from moodcast.vision.detector import make_detector

CANDIDATES = {
    "default": {},
    "blazeface short": {"kind": "blazeface", "variant": "short"},
    "blazeface full": {"kind": "blazeface", "variant": "full"},
    "haar min_face_px=40": {"kind": "haar", "min_face_px": 40},
    "haar min_face_px=60": {"kind": "haar", "min_face_px": 60},
    "haar min_face_px=60,scale_factor=1.2": {"kind": "haar", "min_face_px": 60, "scale_factor": 1.2},
}
# placed face side, px: ~2.2-1.5 m, ~1.5-1 m, ~1-0.7 m, ~0.7-0.45 m
BUCKETS = ((40, 60), (60, 90), (90, 130), (130, 201))


def sweep(fer_scenes: list[Scene], photos: list[Scene], empties: list[Scene], real: list[Scene] = ()) -> dict:
    frames = [(s, s.image) for s in [*fer_scenes, *photos, *empties, *real]]  # BGR, as the daemon hands it over
    # unrelated stills: each one searched whole (track_frames = 0), as a new face in a camera's frame is
    detectors = {name: make_detector(dataclasses.replace(DetectorConfig(), **{"track_frames": 0, **kw}))
                 for name, kw in CANDIDATES.items()}
    names = list(detectors)
    wall = {n: [] for n in names}
    photo_wall = {n: [] for n in names}
    cpu = {n: 0.0 for n in names}
    found = {n: {"fer": 0, "photos": 0, "false": 0, "real": 0, **{b: 0 for b in BUCKETS},
                 **{("real", b): 0 for b in BUCKETS}} for n in names}
    per_bucket = {b: sum(_bucket(s) == b for s in fer_scenes) for b in BUCKETS}
    real_bucket = {b: sum(_bucket(s) == b for s in real) for b in BUCKETS}
    for i, (scene, image) in enumerate(frames):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            c0, t0 = time.process_time(), time.perf_counter()
            faces = detectors[name].detect(image)
            wall[name].append((time.perf_counter() - t0) * 1e3)
            if scene.source.startswith("frames/"):
                photo_wall[name].append(wall[name][-1])
            cpu[name] += time.process_time() - c0  # the whole process: OpenCV's worker threads included
            _count(found[name], scene, faces)
    return {"frames": {"fer": len(fer_scenes), "photos": len(photos), "empty": len(empties), "real": len(real)},
            "opencv_threads": cv2.getNumThreads(),
            "settings": {n: {"detect_ms": summary(wall[n]), "detect_ms_real_photos": summary(photo_wall[n]),
                             "cpu_ms_per_frame": round(cpu[n] * 1e3 / len(frames), 2),
                             "fer_found_pct": round(100 * found[n]["fer"] / len(fer_scenes), 1) if fer_scenes else None,
                             "fer_found_pct_by_face_px": {f"{b[0]}-{b[1] - 1}":
                                                          round(100 * found[n][b] / per_bucket[b], 1)
                                                          for b in BUCKETS if per_bucket[b]},
                             "real_found_pct": round(100 * found[n]["real"] / len(real), 1) if real else None,
                             "real_found_pct_by_face_px": {f"{b[0]}-{b[1] - 1}": round(100 * found[n][("real", b)]
                                                                                        / real_bucket[b], 1)
                                                           for b in BUCKETS if real_bucket[b]},
                             "photos_with_face": found[n]["photos"], "false_faces": found[n]["false"]}
                         for n in names}}


def _bucket(scene: Scene) -> tuple[int, int] | None:
    return next((b for b in BUCKETS if scene.box and b[0] <= scene.box[2] < b[1]), None)


def _count(tally: dict, scene: Scene, faces) -> None:
    if scene.source.startswith("fer2013"):
        matches = [iou((f.x, f.y, f.w, f.h), scene.box) >= 0.3 for f in faces]
        hit = any(matches)
        tally["fer"] += hit
        tally["false"] += matches.count(False)
        if _bucket(scene):
            tally[_bucket(scene)] += hit
    elif scene.source.startswith("real:"):  # other faces in a group photo are real faces, not false ones
        hit = any(iou((f.x, f.y, f.w, f.h), scene.box) >= 0.3 for f in faces)
        tally["real"] += hit
        if _bucket(scene):
            tally[("real", _bucket(scene))] += hit
    elif scene.source.startswith("frames/"):
        tally["photos"] += bool(faces)
    else:
        tally["false"] += len(faces)


def table_lines(sweep_result: dict) -> list[str]:
    f = sweep_result["frames"]
    sizes = "/".join(f"{a}-{b - 1}" for a, b in BUCKETS)
    out = ["", f"detectors ({f['fer']} FER scenes, {f.get('real', 0)} real-face scenes, {f['photos']} photos, "
               f"{f['empty']} empty; OpenCV threads {sweep_result['opencv_threads']}):",
           f"  {'setting':<38}{'wall p50/p95 ms':>17}{'CPU ms/frame':>13}{'FER found':>10}{'  by px ' + sizes:>28}"
           f"{'real found':>11}{'  by px ' + sizes:>28}{'photos':>7}{'false':>6}"]
    for name, r in sweep_result["settings"].items():
        d = r["detect_ms"]
        fer = "-" if r["fer_found_pct"] is None else f"{r['fer_found_pct']}%"
        real = "-" if r.get("real_found_pct") is None else f"{r['real_found_pct']}%"
        by = "/".join(f"{v:.0f}%" for v in r["fer_found_pct_by_face_px"].values()) or "-"
        real_by = "/".join(f"{v:.0f}%" for v in r.get("real_found_pct_by_face_px", {}).values()) or "-"
        out.append(f"  {name:<38}{d['p50']:>8.1f}/{d['p95']:<8.1f}{r['cpu_ms_per_frame']:>13}{fer:>10}{by:>28}"
                   f"{real:>11}{real_by:>28}{r['photos_with_face']:>7}{r['false_faces']:>6}")
    return out


def main(argv=None) -> int:
    """The sweep alone (about a minute of CPU): python -m bench.detector_sweep --data fer2013.npz"""
    import argparse
    import json

    from bench.accuracy import sample
    from bench.real_scenes import real_scenes
    from bench.scenes import ROOT, Fer2013, empty_scene, fer_scene, photo_scenes

    p = argparse.ArgumentParser(prog="python -m bench.detector_sweep", description=main.__doc__)
    p.add_argument("--data", type=Path, help="fer2013.npz (without it: real photos and empty scenes only)")
    p.add_argument("--frames", type=Path, default=ROOT.parent / "shared" / "data" / "frames")
    p.add_argument("--sweep-frames", type=int, default=100, help="FER scenes (PrivateTest, seed 2 as in the bench)")
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args(argv)
    fer = Fer2013(a.data) if a.data else None
    scenes = [fer_scene(fer, int(i)) for i in sample(len(fer), a.sweep_frames, seed=2)] if fer else []
    photos = photo_scenes(a.frames)
    result = sweep(scenes, photos, [empty_scene(100 + i) for i in range(10)], real_scenes(photos, a.sweep_frames))
    print("\n".join(table_lines(result)))
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
