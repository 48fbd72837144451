"""Reaction time: the real daemon replays stills whose expression switches every `switch_s` seconds.

Measured in real time at a real MQTT subscriber: for the stretch that starts at replay time
k * switch_s, the reaction is (arrival of the first mood_changed event to the new expression)
minus (READY time + k * switch_s). The daemon sends READY=1 immediately before its camera loop
takes the replay's start time, so READY is the replay's time zero on our clock (checked against
the first face_found event, which is frame 0 plus one frame's processing).

Faces are chosen so that the pipeline recognises them (FER+ >= 7/10 votes, the detector plus
classifier agree on the scene, with a score above the tracker's confidence floor): this part
measures timing and flicker, not accuracy. When the
model recognises fewer than two moods that way (an interim model), each stretch instead expects
the mood the pipeline itself reads on that still, with confident reads preferred, and the result
says so: the tracker's and daemon's reaction is still what is timed.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from bench.daemons import Daemon, Recorder
from bench.scenes import Fer2013, Scene, fer_scene, iou
from bench.stats import summary
from moodcast.config import MoodConfig
from moodcast.vision.analyzer import Analyzer

CYCLE = ("neutral", "happy", "surprise", "sad", "angry", "fear", "disgust")


def read(analyzer: Analyzer, scene: Scene) -> tuple[str | None, float]:
    """(mood, score) the pipeline reads on a still with exactly one face (on the placed face); else (None, 0)."""
    a = analyzer.analyse(scene.image)
    if len(a.faces) != 1 or a.probs is None:
        return None, 0.0
    f = a.faces[0]
    if scene.box and iou((f.x, f.y, f.w, f.h), scene.box) < 0.3:
        return None, 0.0
    return analyzer.classifier.labels[int(a.probs.argmax())], float(a.probs.max())


def pick_faces(analyzer: Analyzer, fer: Fer2013 | None, photos: list[Scene], per_mood: int = 3,
               tries: int = 25) -> tuple[dict[str, list[Scene]], str]:
    """Up to `per_mood` stills per mood, most confident first, and how they were chosen."""
    candidates = [s for s in photos if s.label]
    if fer is not None:
        candidates += [fer_scene(fer, int(i), seed=7) for mood in CYCLE for i in fer.clear(mood)[:tries]]
    floor = MoodConfig().min_confidence  # below it the tracker says "uncertain", never the mood
    reads = [(s, m, p) for s in candidates for m, p in [read(analyzer, s)] if p >= floor]
    agreeing = _best({}, [(s, m, p) for s, m, p in reads if m and m == s.label], per_mood)
    if len(agreeing) >= 2:
        return agreeing, "labelled faces the pipeline reads correctly"
    by_read = _best({}, [(Scene(s.image, s.box, m, s.source), m, p) for s, m, p in reads if m], per_mood)
    return by_read, (f"the model reads only {sorted(agreeing) or 'no'} labels correctly: each stretch expects "
                     "the mood the pipeline reads on that still (timing, not accuracy)")


def _best(picks: dict, reads: list, per_mood: int) -> dict[str, list[Scene]]:
    for scene, mood, _score in sorted(reads, key=lambda r: -r[2]):
        if len(picks.setdefault(mood, [])) < per_mood:
            picks[mood].append(scene)
    return {m: v for m, v in picks.items() if v}


def write_sequence(picks: dict[str, list[Scene]], stretches: int, directory: Path) -> list[str]:
    """PNG files NNN_<mood>.png, the moods in turn so that every stretch differs from the last."""
    moods = [m for m in CYCLE if m in picks]
    directory.mkdir(parents=True, exist_ok=True)
    sequence = []
    for k in range(stretches):
        mood = moods[k % len(moods)]
        faces = picks[mood]
        cv2.imwrite(str(directory / f"{k:03d}_{mood}.png"), faces[(k // len(moods)) % len(faces)].image)
        sequence.append(mood)
    return sequence


def run(workdir: Path, broker, picks: dict[str, list[Scene]], how: str, switches: int, switch_s: float,
        extra: dict | None = None) -> dict:
    if len(picks) < 2:
        return {"skipped": f"the pipeline reads fewer than two moods on the candidate stills ({sorted(picks)})"}
    sequence = write_sequence(picks, switches + 1, workdir / "reaction_frames")
    camera = {"path": str(workdir / "reaction_frames"), "image_seconds": switch_s, "realtime": True, "loop": False}
    daemon = Daemon(workdir, "reaction", camera, broker.host, broker.port, extra)
    recorder = Recorder(broker.host, broker.port, [f"{daemon.base}/event"])
    try:
        ready_s = daemon.wait_ready()
        daemon.proc.wait(timeout=len(sequence) * switch_s + 60)
    finally:
        time.sleep(0.5)  # the last events are in flight
        recorder.stop()
        daemon.stop()
    return analyse(sequence, daemon.notify.ready_at(), switch_s, recorder) | {
        "ready_s": round(ready_s, 3), "moods": sorted(picks), "switch_s": switch_s, "faces": how}


def analyse(sequence: list[str], t0: float, switch_s: float, recorder: Recorder) -> dict:
    changes = recorder.events("mood_changed")
    found = recorder.events("face_found")
    reactions, flicker, transitional, missed = [], 0, 0, []
    first_face_s = None
    for k, mood in enumerate(sequence):
        start, end = t0 + k * switch_s, t0 + (k + 1) * switch_s
        inside = [(t, e) for t, e in changes if start <= t < end]
        hit = next((j for j, (_, e) in enumerate(inside) if e.get("to") == mood), None)
        if hit is None:
            missed.append({"stretch": k, "expected": mood, "got": [e.get("to") for _, e in inside]})
            continue
        delay = inside[hit][0] - start
        if k == 0:
            first_face_s = round(delay, 3)  # from no_face at start-up: not a switch between expressions
        else:
            reactions.append(delay)
            transitional += hit  # changes on the way (e.g. through uncertain) before the new mood
        flicker += len(inside) - hit - 1  # any change after the new mood settled: a false change
    return {
        "switches": len(sequence) - 1,
        "reaction_s": summary(reactions, 3), "reaction_samples_s": [round(r, 3) for r in reactions],
        "false_changes_steady": flicker, "transitional_changes": transitional, "missed": missed,
        "first_face_s": first_face_s,
        "anchor_check_ms": round((found[0][0] - t0) * 1e3, 1) if found else None,
    }
