"""SIGHUP against the real daemon: a bad part of a reload is refused as a whole, the daemon keeps running."""

import signal
import time

import pytest

from bench.mosquitto import Subscriber, publish
from tests.daemon_process import STARTUP, STOP, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}


@pytest.mark.parametrize("detector", [
    {"kind": "yunet"},                              # no model at all
    {"kind": "yunet", "model": "/etc/hostname"},    # a file that is not an ONNX model
    {"kind": "yunet", "model": "NOT_ONNX"},         # an .onnx name with junk inside
])
def test_reload_with_a_bad_detector_is_refused(tmp_path, mosquitto, detector, daemon_process):
    if detector.get("model") == "NOT_ONNX":
        junk = tmp_path / "face.onnx"
        junk.write_bytes(b"\x08\x07garbage" * 100)
        detector = {**detector, "model": str(junk)}
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "online", timeout=STARTUP)
        write_config(config, mosquitto, camera=LOOP, detector=detector, mood={"min_dwell_s": 5.0})
        daemon.signal(signal.SIGHUP)
        time.sleep(2)
        assert daemon.running()
        sub.clear()
        publish(mosquitto, f"{BASE}/set/snapshot_stats", "")
        first = sub.wait_for(f"{BASE}/stats", timeout=10).json()["frames"]
        time.sleep(1)
        publish(mosquitto, f"{BASE}/set/snapshot_stats", "")
        sub.wait_for(f"{BASE}/stats", lambda m: m.json()["frames"] > first, timeout=10)  # still analysing
        write_config(config, mosquitto, camera=LOOP, logging={"level": "debug"})
        daemon.signal(signal.SIGHUP)  # a good reload afterwards is applied
        time.sleep(2)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
        out = daemon.output()
    refused = [line for line in out.splitlines() if "reload refused" in line]
    assert len(refused) == 1 and "[detector] model" in refused[0], out
    assert "configuration reloaded" in out
    assert "Traceback" not in out


def test_reload_to_every_face_and_a_room_policy_applies_live(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/state"]) as sub, daemon_process(config) as daemon:
        first = sub.wait_for(f"{BASE}/state", lambda m: m.json()["mood"] == "happy", timeout=STARTUP).json()
        assert "room" not in first
        write_config(config, mosquitto, camera=LOOP, detector={"faces": "all"}, mood={"room": "majority"})
        daemon.signal(signal.SIGHUP)
        state = sub.wait_for(f"{BASE}/state", lambda m: m.json().get("room", {}).get("face_moods") == ["happy"]
                             and m.json()["mood"] == "happy", timeout=30).json()
        assert state["room"]["policy"] == "majority" and state["room"]["moods"]["majority"] == "happy"
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
        assert "Traceback" not in daemon.output()
