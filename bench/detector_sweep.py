"""Detector settings vs cost and recall: the data for choosing [detector] defaults on slow CPUs.

Profiling the daemon (py-spy) shows the Haar cascade is nearly all of a frame's CPU; colour
conversion and downscaling cost well under 1 %. Its cost is set by how many pyramid levels it
scans (min_face_px, scale_factor, detect_width), so each candidate is run on the same frames,
rotating which goes first, and reported with what it finds: placed FER faces (IoU >= 0.3), by
face size, real photos with a face found, and false faces (boxes on empty backgrounds or away
from the placed FER face).
"""

from __future__ import annotations

import dataclasses
import time

import cv2

from moodcast.config import DetectorConfig
from moodcast.detector import make_detector

from bench.scenes import Scene, iou
from bench.stats import summary

CANDIDATES = {
    "default": {},
    "scale_factor=1.2": {"scale_factor": 1.2},
    "scale_factor=1.2,min_neighbors=4": {"scale_factor": 1.2, "min_neighbors": 4},
    "min_face_px=60": {"min_face_px": 60},
    "min_face_px=80": {"min_face_px": 80},
    "min_face_px=60,scale_factor=1.2": {"min_face_px": 60, "scale_factor": 1.2},
    "detect_width=240": {"detect_width": 240},
}
BUCKETS = ((60, 90), (90, 130), (130, 201))  # placed face side, px: ~1.5-1 m, ~1-0.7 m, ~0.7-0.45 m


def sweep(fer_scenes: list[Scene], photos: list[Scene], empties: list[Scene]) -> dict:
    frames = [(s, cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY)) for s in fer_scenes + photos + empties]
    detectors = {name: make_detector(dataclasses.replace(DetectorConfig(), **kw)) for name, kw in CANDIDATES.items()}
    names = list(detectors)
    wall = {n: [] for n in names}
    photo_wall = {n: [] for n in names}
    cpu = {n: 0.0 for n in names}
    found = {n: {"fer": 0, "photos": 0, "false": 0, **{b: 0 for b in BUCKETS}} for n in names}
    per_bucket = {b: sum(_bucket(s) == b for s in fer_scenes) for b in BUCKETS}
    for i, (scene, gray) in enumerate(frames):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            c0, t0 = time.process_time(), time.perf_counter()
            faces = detectors[name].detect(gray)
            wall[name].append((time.perf_counter() - t0) * 1e3)
            if scene.source.startswith("frames/"):
                photo_wall[name].append(wall[name][-1])
            cpu[name] += time.process_time() - c0  # the whole process: OpenCV's worker threads included
            _count(found[name], scene, faces)
    return {"frames": {"fer": len(fer_scenes), "photos": len(photos), "empty": len(empties)},
            "opencv_threads": cv2.getNumThreads(),
            "settings": {n: {"detect_ms": summary(wall[n]), "detect_ms_real_photos": summary(photo_wall[n]),
                             "cpu_ms_per_frame": round(cpu[n] * 1e3 / len(frames), 2),
                             "fer_found_pct": round(100 * found[n]["fer"] / len(fer_scenes), 1) if fer_scenes else None,
                             "fer_found_pct_by_face_px": {f"{b[0]}-{b[1] - 1}": round(100 * found[n][b] / per_bucket[b], 1)
                                                          for b in BUCKETS if per_bucket[b]},
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
    elif scene.source.startswith("frames/"):
        tally["photos"] += bool(faces)
    else:
        tally["false"] += len(faces)


def table_lines(sweep_result: dict) -> list[str]:
    f = sweep_result["frames"]
    out = ["", f"detector settings ({f['fer']} FER scenes, {f['photos']} photos, {f['empty']} empty; "
               f"OpenCV threads {sweep_result['opencv_threads']}):",
           f"  {'setting':<34}{'wall p50/p95 ms':>17}{'photos p50/p95':>16}{'CPU ms/frame':>14}{'FER found':>11}"
           f"{'  by face px ' + '/'.join(f'{a}-{b - 1}' for a, b in BUCKETS):>29}{'photos':>8}{'false':>7}"]
    for name, r in sweep_result["settings"].items():
        d = r["detect_ms"]
        fer = "-" if r["fer_found_pct"] is None else f"{r['fer_found_pct']}%"
        by = "/".join(f"{v:.0f}%" for v in r["fer_found_pct_by_face_px"].values()) or "-"
        ph = r.get("detect_ms_real_photos", {})
        ph = f"{ph['p50']:.1f}/{ph['p95']:.1f}" if ph.get("n") else "-"
        out.append(f"  {name:<34}{d['p50']:>8.1f}/{d['p95']:<8.1f}{ph:>16}{r['cpu_ms_per_frame']:>14}{fer:>11}{by:>29}"
                   f"{r['photos_with_face']:>8}{r['false_faces']:>7}")
    return out


