"""CPU of the real daemon at 5 fps, per detector, with a face and with nobody in view:
python -m bench.cpu [--data fer2013.npz] [--frames 150] [--idle-s 40]

CPU per analysed frame is measured on the in-process Daemon replaying stills as fast as it can
(realtime = false): process CPU time does not depend on how busy the rest of the machine is, so
the figure holds on a loaded machine, where a real-time run cannot keep its pace. Times 5 fps it
is the CPU at the default rate. Each detector runs the same stills, alternating in rounds.
The idle figure is real time: a daemon with the default back-off watches an empty room, and
its process CPU is read after the back-off has set in (a low-rate daemon keeps up even on a busy
machine, and the fixed costs - threads, timers - count there).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from bench import accuracy
from bench.footprint import write_stills
from bench.real_scenes import real_scenes
from bench.scenes import ROOT, Fer2013, empty_scene, fer_scene, photo_scenes
from bench.toml_file import write_toml
from moodcast import config as config_module
from moodcast.service.daemon import Daemon

FPS = 5.0
DETECTORS = {"blazeface full (default)": {}, "haar (default settings)": {"kind": "haar"}}


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def per_frame_ms(stills: Path, work: Path, detector: dict, frames: int) -> float:
    """Process CPU ms per analysed frame, over `frames` frames of a looping replay at full speed."""
    cfg = {"camera": {"source": "replay", "path": str(stills), "realtime": False, "loop": True,
                      "image_seconds": 2.0, "idle_after_s": 0.0},  # as the bench soak holds a face
           "mqtt": {"enabled": False}, "state": {"dir": str(work / "state")}}
    if detector:
        cfg["detector"] = detector
    daemon = Daemon(config_module.load(write_toml(work / "cpu.toml", cfg)))
    warm = 10  # interpreter set-up and first-call allocations are start-up, not steady state
    marks: dict[str, float] = {}
    original = daemon.stats.record

    def record(stage_ms: dict) -> None:  # counts frames; the stop is asked for between two frames
        original(stage_ms)
        if daemon.stats.frames == warm:
            marks["start"] = cpu_s()
        if daemon.stats.frames == warm + frames:
            marks["end"] = cpu_s()
            daemon.stop_event.set()

    daemon.stats.record = record
    daemon.run()
    return (marks["end"] - marks["start"]) * 1e3 / frames


def idle_percent(stills: Path, work: Path, idle_s: float) -> dict:
    """Real time, default back-off: CPU % of a core from idle_after_s + 2 s to idle_s."""
    cfg = {"camera": {"source": "replay", "path": str(stills), "realtime": True, "loop": True, "image_seconds": 5.0},
           "mqtt": {"enabled": False}, "state": {"dir": str(work / "state")}}
    daemon = Daemon(config_module.load(write_toml(work / "idle.toml", cfg)))
    settle = daemon.config.camera.idle_after_s + 2.0
    out: dict = {}

    def watch() -> None:
        daemon.stop_event.wait(settle)
        t0, c0 = time.monotonic(), cpu_s()
        daemon.stop_event.wait(idle_s - settle)
        out["cpu_percent"] = round(100 * (cpu_s() - c0) / (time.monotonic() - t0), 2)
        out["rate_fps"] = daemon.camera.fps
        daemon.stop_event.set()

    threading.Thread(target=watch, daemon=True).start()
    daemon.run()
    return {**out, "window_s": idle_s - settle, "idle_after_s": daemon.config.camera.idle_after_s}


def face_scenes(a) -> list:
    """Real faces at 40-200 px when the photos are there: BlazeFace finds few pasted FER crops, and a
    face the detector misses is never classified, which would leave classification out of the CPU."""
    real = real_scenes(photo_scenes(a.frames_dir), 24)
    if real or not a.data:
        return real
    fer = Fer2013(a.data)
    return [fer_scene(fer, int(i), seed=3) for i in accuracy.sample(len(fer), 24, seed=3)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="fer2013.npz (face stills when the real photos are absent)")
    p.add_argument("--frames-dir", type=Path, default=ROOT.parent / "shared" / "data" / "frames")
    p.add_argument("--frames", type=int, default=150, help="frames per detector, face and empty, per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--idle-s", type=float, default=40.0)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="moodcast-cpu-"))
    faces = write_stills(face_scenes(a), work / "face")
    empty = write_stills([empty_scene(seed) for seed in range(3)], work / "empty")
    ms: dict[str, list[float]] = {}
    for _ in range(a.rounds):
        for name, detector in DETECTORS.items():
            for room, stills in (("face", faces), ("empty", empty)):
                ms.setdefault(f"{name}, {room}", []).append(per_frame_ms(stills, work, detector, a.frames))
    result = {"per_frame": {k: {"cpu_ms": round(min(v), 2), "cpu_percent_at_5fps": round(min(v) * FPS / 10, 2),
                                "rounds_ms": [round(x, 2) for x in v]} for k, v in ms.items()},
              "idle_default_backoff": idle_percent(empty, work, a.idle_s),
              "load_avg": os.getloadavg()[0]}
    for k, v in result["per_frame"].items():
        print(f"{k:<38} {v['cpu_ms']:6.2f} ms CPU/frame -> {v['cpu_percent_at_5fps']:5.2f} % of a core at 5 fps  "
              f"(rounds {v['rounds_ms']})")
    idle = result["idle_default_backoff"]
    print(f"nobody in view, default back-off (real time, {idle['window_s']:.0f} s after {idle['idle_after_s']:g}+2 s): "
          f"{idle['cpu_percent']} % of a core at {idle['rate_fps']} fps; load avg {result['load_avg']:.1f}")
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
