"""README command 1: `moodcast demo` (what `make run` starts) shows live MQTT messages from the
bundled samples through an embedded broker, with no camera and no broker installed."""

import subprocess
import sys

from moodcast.watch import describe


def test_demo_shows_live_messages_and_stops_cleanly():
    result = subprocess.run([sys.executable, "-m", "moodcast.cli", "demo", "--duration", "9"],
                            capture_output=True, text=True, timeout=90)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "embedded MQTT broker on 127.0.0.1" in out
    lines = out.splitlines()
    assert any("availability" in line and line.rstrip().endswith("online") for line in lines)
    assert any(" state " in line for line in lines)
    assert any("mood_changed" in line for line in lines)
    assert any("face_found" in line for line in lines) and any("face_lost" in line for line in lines)
    assert lines[-1].rstrip().endswith("offline")  # the daemon's clean goodbye, seen by the viewer
    assert "Traceback" not in result.stderr


def test_watch_lines_are_readable():
    line = describe("moodcast/kitchen/event",
                    b'{"schema":1,"type":"mood_changed","from":"neutral","to":"happy","confidence":0.83}')
    assert line.endswith("kitchen    event          mood_changed neutral -> happy (83%)")
    assert describe("moodcast/kitchen/availability", b"online").endswith("online")
    assert describe("moodcast/kitchen/state", b"").endswith("(cleared)")
    assert "happy 90%  (1 face(s)) [paused]" in describe(
        "moodcast/kitchen/state", b'{"mood":"happy","confidence":0.9,"faces":1,"paused":true}')
