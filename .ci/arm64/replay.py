"""Replay the bundled samples through the installed `moodcast run` against a Mosquitto started here,
and write the events it published (mood changes, faces found and lost, recommendations), in order
and without wall-clock fields, one JSON per line, so that two machines' replays can be compared
field by field. A replay runs in virtual time, so its events do not depend on the machine's speed;
how many `state` snapshots are published does (they are rate-limited in wall time): only counted.

`compare` wants the same events in the same order with every field equal, except a mood's
`confidence`: the classifier's input may differ by a grey level between the machines (see
scores.py), so on a frame of a followed face an int8 probability can move by one step (1/256),
and the smoothed confidence by about 0.001 (seen with model v2.3: 0.696 against 0.697).
CONFIDENCE_TOLERANCE allows a few such steps, and `compare` says how far apart the two were.

usage: python replay.py MOODCAST_BIN MOSQUITTO OUTFILE      (run with the moodcast venv's Python)
       python replay.py compare A B                         (exit 1 on a difference)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import moodcast
from moodcast.mqtt.embedded_broker import free_port

DEVICE = "arm64check"
CONFIDENCE_TOLERANCE = 0.01  # a few int8 steps of 1/256 on a smoothed probability
WALL_CLOCK = {"timestamp", "since", "uptime_s", "fps", "latency_ms", "capture_ms", "detect_ms", "classify_ms", "api_ms"}


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def compare(a_path: str, b_path: str) -> int:
    a = [json.loads(line) for line in open(a_path)]
    b = [json.loads(line) for line in open(b_path)]
    rest = lambda event: {k: v for k, v in event.items() if k != "confidence"}  # noqa: E731
    if len(a) != len(b) or any(rest(x) != rest(y) for x, y in zip(a, b, strict=False)):
        print("replay: the events, their order or their fields differ")
        return 1
    gap = max((abs(x.get("confidence", 0.0) - y.get("confidence", 0.0)) for x, y in zip(a, b, strict=True)),
              default=0.0)
    if gap > CONFIDENCE_TOLERANCE:
        print(f"replay: a mood's confidence differs by {gap:.3g}")
        return 1
    print(f"replay: {len(a)} published events equal field by field, confidences within {gap:.2g}")
    return 0


def main() -> int:
    if sys.argv[1] == "compare":
        return compare(*sys.argv[2:4])
    moodcast_bin, mosquitto, out = sys.argv[1:]
    samples = Path(moodcast.__file__).parent / "samples"
    work = Path(tempfile.mkdtemp(prefix="replay-"))
    port = free_port()
    (work / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n")
    broker = subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    messages: list[tuple[str, str]] = []
    offline = threading.Event()

    def on_message(client, userdata, msg):
        messages.append((msg.topic, msg.payload.decode()))
        if msg.topic.endswith("/availability") and msg.payload == b"offline":
            offline.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="replay-check")
    sub.on_message = on_message
    sub.on_connect = lambda client, *a: client.subscribe(f"moodcast/{DEVICE}/#")
    for _ in range(100):
        try:
            sub.connect("127.0.0.1", port)
            break
        except OSError:
            time.sleep(0.2)
    sub.loop_start()
    time.sleep(1.0)
    (work / "config.toml").write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ndevice_id = "{DEVICE}"\n\n'
        f'[camera]\nsource = "replay"\npath = "{samples}"\nrealtime = false\nloop = false\nimage_seconds = 2.0\n\n'
        f'[state]\ndir = "{work / "state"}"\n')
    start = time.monotonic()
    run = subprocess.run([moodcast_bin, "run", "-c", str(work / "config.toml")], capture_output=True, text=True,
                         timeout=1800)
    took = time.monotonic() - start
    offline.wait(30)
    sub.loop_stop()
    broker.terminate()
    if run.returncode:
        print(run.stdout + run.stderr, file=sys.stderr)
        return run.returncode
    events = [json.dumps(strip(json.loads(p)), sort_keys=True) for t, p in messages if t.endswith("/event")]
    Path(out).write_text("".join(line + "\n" for line in events))
    moods = [json.loads(e)["to"] for e in events if json.loads(e)["type"] == "mood_changed"]
    states = sum(t.endswith("/state") for t, _ in messages)
    print(f"replay: {took:.1f} s, {len(events)} events, moods {' -> '.join(moods)}, {states} state snapshots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
