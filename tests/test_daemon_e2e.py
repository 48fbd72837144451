"""The real daemon, a real Mosquitto, real faces: what subscribers see, and what happens on faults."""

import json
import signal
import time

import jsonschema
import pytest

from bench.mosquitto import Subscriber, publish
from moodcast.labels import STATES
from moodcast.mqtt import payloads
from tests.daemon_process import run_cli, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"


def replay(tmp_path, broker, realtime=False, loop=False, image_seconds=2.0, path=SAMPLES, **sections):
    camera = {"path": str(path), "realtime": realtime, "loop": loop, "image_seconds": image_seconds,
              "source": "replay"}
    return write_config(tmp_path / "config.toml", broker, camera=camera, **sections)


def validate(topic: str, message) -> None:
    kind = topic.rsplit("/", 1)[1]
    data = message.text if kind == "availability" else message.json()
    jsonschema.validate(data, payloads.load_schema(kind))


def test_replay_publishes_the_contract(tmp_path, mosquitto, daemon_process):
    config = replay(tmp_path, mosquitto)
    with Subscriber(mosquitto, [f"{BASE}/#", "homeassistant/#"]) as sub, daemon_process(config) as daemon:
        assert daemon.wait(180) == 0, daemon.output()  # ~1 s of CPU, but a loaded machine may take a minute
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "offline")
        for topic, messages in sub.messages.items():
            if topic.startswith(BASE):
                for m in messages:
                    validate(topic, m)
        events = [m.json() for m in sub.messages[f"{BASE}/event"]]
        moods = [e["to"] for e in events if e["type"] == "mood_changed"]
        assert moods[:3] == ["happy", "neutral", "no_face"], moods  # smiling, smile blurred, a coffee cup
        assert {"face_found", "face_lost"} <= {e["type"] for e in events}
        assert any(t.startswith("homeassistant/sensor/moodcast_testcam/") for t in sub.messages)


def test_late_subscriber_gets_retained_state(tmp_path, mosquitto, daemon_process):
    config = replay(tmp_path, mosquitto, path=SAMPLES / "01_astronaut.png")
    with daemon_process(config) as daemon:
        assert daemon.wait(60) == 0
    with Subscriber(mosquitto, [f"{BASE}/#"]) as late:
        state = late.wait_for(f"{BASE}/state")
        assert state.retain and state.json()["mood"] == "happy"
        assert late.wait_for(f"{BASE}/availability").text == "offline"
        assert f"{BASE}/event" not in late.messages  # events are moments, never retained


def test_sigterm_says_offline_and_exits_within_5s(tmp_path, mosquitto, daemon_process):
    config = replay(tmp_path, mosquitto, realtime=True, loop=True)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "online", timeout=30)
        sub.wait_for(f"{BASE}/state", timeout=10)
        t0 = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(5) == 0
        assert time.monotonic() - t0 < 5
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "offline", timeout=2)


def test_sigkill_delivers_the_last_will(tmp_path, mosquitto, daemon_process):
    config = replay(tmp_path, mosquitto, realtime=True, loop=True)
    with Subscriber(mosquitto, [f"{BASE}/availability"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "online", timeout=30)
        daemon.signal(signal.SIGKILL)
        daemon.wait(5)
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "offline", timeout=5)


def test_starts_with_the_broker_down_and_publishes_when_it_appears(tmp_path, mosquitto, daemon_process):
    mosquitto.stop()
    config = replay(tmp_path, mosquitto, realtime=True, loop=True)
    with daemon_process(config) as daemon:
        time.sleep(3)
        assert daemon.running()
        mosquitto.start()
        with Subscriber(mosquitto, [f"{BASE}/#"]) as sub:
            assert sub.wait_for(f"{BASE}/availability", timeout=10).text == "online"
            assert sub.wait_for(f"{BASE}/state", timeout=10).json()["mood"] in STATES
        assert "cannot connect to 127.0.0.1" in daemon.output()


def test_broker_restart_republishes_retained_state(tmp_path, mosquitto, daemon_process):
    config = replay(tmp_path, mosquitto, realtime=True, loop=True)
    with daemon_process(config) as daemon:
        with Subscriber(mosquitto, [f"{BASE}/state"]) as sub:
            sub.wait_for(f"{BASE}/state", timeout=30)
        mosquitto.restart()  # no persistence: every retained message is gone with the old process
        with Subscriber(mosquitto, [f"{BASE}/availability", f"{BASE}/state"]) as sub:
            assert sub.wait_for(f"{BASE}/availability", timeout=10).text == "online"  # the daemon is back
            sub.wait_for(f"{BASE}/state", timeout=10)  # and has published its state since (else `late` races it)
        with Subscriber(mosquitto, [f"{BASE}/#"]) as late:
            assert late.wait_for(f"{BASE}/state", lambda m: m.retain, timeout=5).json()["schema"] == 1
        assert daemon.running()


def test_commands_apply_and_bad_ones_are_rejected(tmp_path, mosquitto, daemon_process):
    config = replay(tmp_path, mosquitto, realtime=True, loop=True)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", timeout=30)
        publish(mosquitto, f"{BASE}/set/pause", "")
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["paused"] is True, timeout=5)
        publish(mosquitto, f"{BASE}/set/policy", "sideways")
        bad = sub.wait_for(f"{BASE}/event", lambda m: m.json().get("command") == "policy", timeout=5).json()
        assert bad["ok"] is False and "sideways" in bad["message"]
        publish(mosquitto, f"{BASE}/set/resume", "")
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["paused"] is False, timeout=5)
        publish(mosquitto, f"{BASE}/set/policy", "uplift")
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["policy"] == "uplift", timeout=5)
        assert daemon.running()


def test_command_flood_does_not_stall_frames(tmp_path, mosquitto, daemon_process):
    config = replay(tmp_path, mosquitto, realtime=True, loop=True, mqtt={"stats_interval_s": 1.0})
    with Subscriber(mosquitto, [f"{BASE}/stats"]) as sub, daemon_process(config) as daemon:
        before = sub.wait_for(f"{BASE}/stats", timeout=30).json()
        client = mosquitto.configure(__import__("paho.mqtt.client", fromlist=["Client"]).Client(
            __import__("paho.mqtt.enums", fromlist=["x"]).CallbackAPIVersion.VERSION2))
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        t0 = time.monotonic()
        for i in range(1000):
            client.publish(f"{BASE}/set/autoplay", "on" if i % 2 else "off", qos=0)
        flood_s = time.monotonic() - t0
        client.disconnect()
        client.loop_stop()
        sub.clear()
        time.sleep(3)
        after = sub.wait_for(f"{BASE}/stats", timeout=5).json()
        assert flood_s < 1.0
        assert after["fps"] > 0.8 * 5.0, after  # still analysing at the configured rate
        assert after["rss_mb"] < before["rss_mb"] + 30
        assert daemon.running()
    errors = [line for line in daemon.output().splitlines() if "command(s) dropped" in line]
    assert errors, "a flood beyond the queue must be reported, not silently lost"


@pytest.mark.parametrize("camera, expected", [
    ({"source": "replay", "path": "/nonexistent/video.mp4"}, "/nonexistent/video.mp4: no such file or directory"),
])
def test_unreadable_replay_is_one_line_and_nonzero(tmp_path, camera, expected):
    config = write_config(tmp_path / "config.toml", None, camera=camera)
    result = run_cli("run", "-c", str(config))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"moodcast: {expected}"
    assert "Traceback" not in result.stderr


def test_corrupt_video_file(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x01garbage" * 1000)
    config = write_config(tmp_path / "config.toml", None, camera={"source": "replay", "path": str(video)})
    result = run_cli("run", "-c", str(config))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"moodcast: {video}: not a readable video or image"


def test_corrupt_model_file(tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(b"nonsense" * 64)
    model.with_suffix(".json").write_text(json.dumps({"labels": ["happy", "sad"]}))
    config = write_config(tmp_path / "config.toml", None, model={"path": str(model)})
    result = run_cli("check-config", "-c", str(config))
    assert result.returncode == 78  # a configuration problem: a restart would not mend it
    assert result.stderr.strip() == f"moodcast: {model}: not a valid TFLite model" + result.stderr.strip().split(
        "not a valid TFLite model")[1]
    assert "Traceback" not in result.stderr


def test_missing_camera_device_in_preview(tmp_path):
    config = write_config(tmp_path / "config.toml", None, camera={"source": "opencv", "device": "/dev/video99"})
    result = run_cli("preview", "-c", str(config), "-o", str(tmp_path / "p.jpg"))
    assert result.returncode == 1
    assert result.stderr.strip() == "moodcast: camera /dev/video99: cannot open (plugged in? user in group 'video'?)"
    assert not (tmp_path / "p.jpg").exists()


def test_missing_camera_is_retried_not_fatal_in_the_daemon(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera={"source": "opencv", "device": "/dev/video99",
                                                                        "retry_initial_s": 0.2, "retry_max_s": 1.0})
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        err = sub.wait_for(f"{BASE}/event", lambda m: m.json()["type"] == "error", timeout=30).json()
        assert err["component"] == "camera"
        assert daemon.running()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(5) == 0
