"""python -m bench.pressure: the figures of issue 25 against a real `moodcast run` and a real broker.

- `replay`: a looped, as-fast-as-possible replay of a directory of N unreadable images and one face:
  the log lines (and bytes) the daemon writes in `--seconds`, and the rate it still analyses at
  (before the fix: 10,000 images wrote 1.93 million warnings, 170 MB, in 40 s, and 202 fps fell to 2.2);
- `burst`: bursts of mixed commands ending on `set/paused ON`, each size `--trials` times, growing
  until one does not end paused (or `--max` is reached): the largest burst that ends on its last word.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.daemons import start_broker
from bench.mosquitto import Subscriber, publish
from bench.scenes import SAMPLES
from bench.toml_file import write_toml

BASE = "moodcast/bench"
WINDOW = 20000  # commands one client publishes before it waits for their acknowledgements
MIXED = [("resume", ""), ("paused", "OFF"), ("pause", ""), ("policy", "uplift"), ("policy", "off"),
         ("policy", "sideways"), ("autoplay", "on"), ("autoplay", "off"), ("snapshot_stats", ""), ("reboot", "now")]


def config(directory: Path, broker, camera: dict, stats_interval_s: float = 60.0) -> Path:
    return write_toml(directory / "config.toml", {
        "camera": camera, "state": {"dir": str(directory / "state")},
        "mqtt": {"host": broker.host, "port": broker.port, "device_id": "bench", "stats_interval_s": stats_interval_s}})


class Daemon:
    """`moodcast run` whose output is counted (lines, bytes) as it comes, never stored."""

    def __init__(self, config_path: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "moodcast.cli", "run", "-c", str(config_path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = self.bytes = 0
        self.first: list[str] = []
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines += 1
            self.bytes += len(line)
            if len(self.first) < 40:
                self.first.append(line.decode(errors="replace").rstrip())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def replay_flood(work: Path, broker, files: int, seconds: float) -> dict:
    photos = work / "photos"
    photos.mkdir()
    for i in range(files):
        (photos / f"{i:05d}_broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG" if i % 2 else b"")
    shutil.copy(SAMPLES / "01_astronaut.png", photos / "zz_face.png")
    path = config(work, broker, {"source": "replay", "path": str(photos), "realtime": False, "loop": True},
                  stats_interval_s=5.0)
    with Subscriber(broker, [f"{BASE}/stats", f"{BASE}/availability"]) as sub:
        daemon = Daemon(path)
        try:
            sub.wait_for(f"{BASE}/availability", lambda m: m.text == "online", timeout=600)
            lines0, bytes0, t0 = daemon.lines, daemon.bytes, time.monotonic()
            time.sleep(seconds)
            lines, size = daemon.lines - lines0, daemon.bytes - bytes0
            fps = [m.json()["fps"] for m in sub.messages.get(f"{BASE}/stats", [])][-3:]
        finally:
            daemon.stop()
    return {"unreadable_files": files, "seconds": round(time.monotonic() - t0, 1), "log_lines": lines,
            "log_bytes": size, "log_lines_whole_run": daemon.lines, "fps_last_stats": fps,
            "first_lines": daemon.first}


def burst_ends_paused(broker, sub: Subscriber, size: int, rng: random.Random) -> bool:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    sub.clear()
    publish(broker, f"{BASE}/set/paused", "OFF")
    sub.wait_for(f"{BASE}/state", lambda m: m.json()["paused"] is False, timeout=60)
    commands = [rng.choice(MIXED) for _ in range(size - 1)] + [("paused", "ON")]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-burst-{rng.random()}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    for start in range(0, len(commands), WINDOW):  # QoS 1 message ids are 16-bit: at most 65,535 unacknowledged
        for info in [client.publish(f"{BASE}/set/{name}", payload, qos=1)
                     for name, payload in commands[start:start + WINDOW]]:
            info.wait_for_publish(600)
    client.disconnect()
    client.loop_stop()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the daemon has published nothing new for 2 s
        count = len(sub.messages.get(f"{BASE}/state", []))
        time.sleep(2.0)
        states = sub.messages.get(f"{BASE}/state", [])
        if states and len(states) == count:
            return states[-1].json()["paused"] is True
    return False


def largest_burst(work: Path, broker, trials: int, largest: int) -> dict:
    path = config(work, broker, {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True,
                                 "loop": True})
    rng, results = random.Random(25), []
    with Subscriber(broker, [f"{BASE}/state"]) as sub:
        daemon = Daemon(path)
        try:
            sub.wait_for(f"{BASE}/state", timeout=600)
            size = 1000
            while size <= largest:
                t0 = time.monotonic()
                ok = [burst_ends_paused(broker, sub, size, rng) for _ in range(trials)]
                results.append({"burst": size, "ended_paused": sum(ok), "trials": trials,
                                "seconds_per_trial": round((time.monotonic() - t0) / trials, 1)})
                print(json.dumps(results[-1]), flush=True)
                if not all(ok):
                    break
                size *= 2 if size < 64000 else 1.5
                size = int(size)
        finally:
            daemon.stop()
    good = [r["burst"] for r in results if r["ended_paused"] == r["trials"]]
    return {"largest_burst_ending_on_its_last_command": max(good, default=0), "tried": results}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pressure", description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("replay", "burst"))
    p.add_argument("--files", type=int, default=10000, help="replay: unreadable images (default %(default)s)")
    p.add_argument("--seconds", type=float, default=40.0, help="replay: how long to count (default %(default)s)")
    p.add_argument("--trials", type=int, default=3, help="burst: bursts of each size (default %(default)s)")
    p.add_argument("--max", type=int, default=200000, help="burst: the largest size tried (default %(default)s)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="moodcast-pressure-") as tmp:
        work = Path(tmp)
        broker, kind, stop_broker = start_broker(work / "broker")
        try:
            if args.what == "replay":
                result = replay_flood(work, broker, args.files, args.seconds)
            else:
                result = largest_burst(work, broker, args.trials, args.max)
        finally:
            stop_broker()
    print(json.dumps({"broker": kind, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
