"""python -m bench.fastsoak: hours of frames in minutes, to tell a memory leak from allocator warm-up.

The real-time soak in `python -m bench` covers a few minutes. Memory grows per frame and per
event, not per second, so this runs the real Daemon in-process on a looping replay with
realtime=false (as fast as the CPU allows) and samples RSS every `--frames / 10` frames; with
--tracemalloc it also lists the Python allocations that grew between the middle and the end
(none means any RSS change is native: allocator pools, OpenCV, LiteRT).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from bench import accuracy
from bench.daemons import start_broker
from bench.footprint import write_stills
from bench.scenes import ROOT, Fer2013, fer_scene, photo_scenes
from bench.stats import slope
from bench.toml_file import write_toml
from moodcast import config as config_module
from moodcast.service.daemon import Daemon

FPS = 5.0  # the default analysed rate, to express frames as hours of operation


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fastsoak", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="fer2013.npz (else the labelled real frames)")
    p.add_argument("--frames-dir", type=Path, default=ROOT.parent / "shared" / "data" / "frames")
    p.add_argument("--model", type=Path, help="int8 .tflite (default: the bundled one)")
    p.add_argument("--frames", type=int, default=9000, help="frames to analyse (9000 = 30 min at 5 fps)")
    p.add_argument("--tracemalloc", action="store_true", help="also diff Python allocations (slower)")
    p.add_argument("--json", type=Path, help="also write the result here (used by python -m bench)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="moodcast-fastsoak-"))
    broker, kind, stop_broker = start_broker(work / "broker")
    try:
        daemon = Daemon(config_module.load(_config(args, work, broker)))
        samples, snapshots = _run(daemon, args.frames, args.tracemalloc)
    finally:
        stop_broker()
    result = summarise(samples, snapshots)
    _print(result, kind)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _config(args, work: Path, broker) -> Path:
    if args.data and args.data.is_file():
        fer = Fer2013(args.data)
        faces = [fer_scene(fer, int(i), seed=3) for i in accuracy.sample(len(fer), 24, seed=3)]
    else:
        faces = [s for s in photo_scenes(args.frames_dir) if s.label]
    if not faces:
        raise SystemExit("fastsoak: needs --data or the real frames")
    sections = {"camera": {"source": "replay", "path": str(write_stills(faces, work / "stills")), "image_seconds": 2.0,
                           "realtime": False, "loop": True},
                "mqtt": {"host": broker.host, "port": broker.port, "device_id": "bench_fastsoak"},
                "state": {"dir": str(work / "state")}, "logging": {"level": "warning"}}
    if args.model:
        sections["model"] = {"path": str(args.model.resolve())}
    return write_toml(work / "config.toml", sections)


def _run(daemon: Daemon, frames: int, trace: bool):
    samples, snapshots, step = [], [], max(1, frames // 10)

    def watch() -> None:
        next_mark = 0
        while not daemon.stop_event.is_set():
            n = daemon.stats.frames
            if n >= next_mark:
                samples.append((n, _rss_mb()))
                if trace and len(samples) in (6, 11):  # the middle and the end
                    snapshots.append(tracemalloc.take_snapshot())
                next_mark += step
            if n >= frames:
                daemon.stop_event.set()
            time.sleep(0.05)

    if trace:
        tracemalloc.start(6)
    threading.Thread(target=watch, daemon=True).start()
    daemon.run()
    return samples, snapshots


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def summarise(samples, snapshots) -> dict:
    """RSS per frame count; the slope over the second half is the trend once warm-up is over."""
    half = samples[len(samples) // 2:]
    per_k = slope([n for n, _ in half], [r for _, r in half]) * 1000
    grew = [str(s) for s in snapshots[1].compare_to(snapshots[0], "lineno")[:5]] if len(snapshots) == 2 else []
    return {"frames": samples[-1][0], "samples": [[n, round(r, 2)] for n, r in samples],
            "second_half_mb_per_1000_frames": round(per_k, 4),
            "second_half_mb_per_h_at_5fps": round(per_k * FPS * 3.6, 3),
            "first_to_last_mb": round(samples[-1][1] - samples[0][1], 2), "python_growth": grew}


def _print(r: dict, broker_kind: str) -> None:
    print(f"frames  RSS MB   (broker: {broker_kind}; 1000 frames = {1000 / FPS / 60:.1f} min at {FPS:g} fps)")
    for n, rss in r["samples"]:
        print(f"{n:6d}  {rss:7.2f}")
    print(f"second half: {r['second_half_mb_per_1000_frames']:+.4f} MB per 1000 frames = "
          f"{r['second_half_mb_per_h_at_5fps']:+.3f} MB/h at {FPS:g} fps; "
          f"first to last {r['first_to_last_mb']:+.2f} MB")
    if r["python_growth"]:
        print("Python allocations that grew, middle -> end:\n  " + "\n  ".join(r["python_growth"]))


if __name__ == "__main__":
    raise SystemExit(main())
