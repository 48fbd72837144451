"""Resting-face calibration end to end: the real daemon on a real Mosquitto, the Home Assistant buttons as
discovery publishes them, `moodcast calibrate` over MQTT and with the camera, restarts and a model change."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from jsonschema import Draft202012Validator

from bench.mosquitto import Subscriber, publish
from moodcast.mqtt import payloads
from moodcast.service.calibration import FILE_NAME, CalibrationFile, Stored
from tests.daemon_process import STARTUP, STOP, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
BUTTONS = "homeassistant/button/moodcast_testcam"
RESTING = SAMPLES / "01b_astronaut_smile_hidden.png"  # the smile hidden: reads a little surprised, not happy
SMILING = SAMPLES / "01_astronaut.png"
MODEL = {"calibration_s": 5.0}
EVENTS = Draft202012Validator(payloads.load_schema("event"))


def replay(path) -> dict:
    return {"source": "replay", "path": str(path), "realtime": True, "loop": True}


def events(sub, kind: str) -> list[dict]:
    return [m.json() for m in sub.messages.get(f"{BASE}/event", []) if m.json()["type"] == kind]


def wait_event(sub, kind: str, count: int = 1, timeout: float = 60) -> dict:
    message = sub.wait_for(f"{BASE}/event", lambda m: m.json()["type"] == kind and len(events(sub, kind)) >= count,
                           timeout=timeout)
    del message
    event = events(sub, kind)[count - 1]
    EVENTS.validate(event)
    return event


def press(broker, sub, key: str) -> None:
    """Press a Home Assistant button: its retained discovery config says where and what to send."""
    config = sub.wait_for(f"{BUTTONS}/{key}/config", timeout=10).json()
    publish(broker, config["command_topic"], config["payload_press"])


def stats(broker, sub) -> dict:
    sub.messages.pop(f"{BASE}/stats", None)
    publish(broker, f"{BASE}/set/snapshot_stats", "")
    return sub.wait_for(f"{BASE}/stats", timeout=10).json()


def moodcast(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moodcast.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_buttons_and_the_cli_calibrate_the_running_service_and_it_survives_a_restart(
        tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=replay(RESTING), model=MODEL)
    stored = tmp_path / "state" / FILE_NAME
    with Subscriber(mosquitto, [f"{BASE}/#", f"{BUTTONS}/+/config"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["faces"] == 1, timeout=STARTUP)
        press(mosquitto, sub, "calibrate")
        command = wait_event(sub, "command")
        assert (command["command"], command["ok"], command["message"]) == ("calibrate", True, "calibration started")
        assert wait_event(sub, "calibration_started")["duration_s"] == 5.0
        done = wait_event(sub, "calibration_done")
        assert done["faces"] >= 20 and done["offset_size"] > 0 and done["strength"] == 1.0
        assert done["offset"]["surprise"] > 0  # this resting face reads surprised: calibration takes it out
        assert stored.stat().st_mode & 0o777 == 0o600
        assert set(json.loads(stored.read_text())) == {"model_sha256", "labels", "offset", "faces", "created"}
        assert stats(mosquitto, sub)["calibration"]["stored"] is True

        cli = moodcast("calibrate", "-c", str(config))  # the same over MQTT, from a shell
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "calibrating: relax and look at the camera for 5 s" in cli.stdout and "calibrated on" in cli.stdout

        publish(mosquitto, f"{BASE}/set/paused", "ON")
        publish(mosquitto, f"{BASE}/set/calibrate", "")
        refused = sub.wait_for(f"{BASE}/event", lambda m: m.json().get("command") == "calibrate"
                               and not m.json()["ok"], timeout=10).json()
        assert refused["message"] == "calibrate: the privacy pause is on (the camera is released)"
        publish(mosquitto, f"{BASE}/set/paused", "OFF")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
    kept = stored.read_bytes()

    with Subscriber(mosquitto, [f"{BASE}/#", f"{BUTTONS}/+/config"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", lambda m: not m.retain, timeout=STARTUP)
        calibration = stats(mosquitto, sub)["calibration"]
        assert calibration["stored"] and calibration["faces"] >= 20 and stored.read_bytes() == kept
        press(mosquitto, sub, "reset_calibration")
        reset = sub.wait_for(f"{BASE}/event", lambda m: m.json().get("command") == "reset_calibration",
                             timeout=10).json()
        assert reset["ok"] and reset["message"] == "calibration reset"
        assert not stored.exists()
        assert stats(mosquitto, sub)["calibration"] == {"stored": False, "strength": 1.0, "running": False}
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
        assert "restored the resting-face calibration" in daemon.output()


def test_a_smile_stores_nothing_and_another_models_calibration_is_discarded(tmp_path, mosquitto, daemon_process):
    stale = Stored("0" * 64, ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"), (0.0,) * 7, 50, 1e9)
    CalibrationFile(tmp_path / "state").save(stale)
    config = write_config(tmp_path / "config.toml", mosquitto, camera=replay(SMILING), model=MODEL)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["mood"] == "happy", timeout=STARTUP)
        assert not (tmp_path / "state" / FILE_NAME).exists()
        publish(mosquitto, f"{BASE}/set/calibrate", "PRESS")
        failed = wait_event(sub, "calibration_failed")
        assert failed["reason"] == "not_relaxed" and failed["message"].startswith("the face looked happy in 100%")
        assert not (tmp_path / "state" / FILE_NAME).exists()
        daemon.signal(signal.SIGTERM)
        daemon.wait(STOP)
        out = daemon.output()
    assert "made with another model" in out and "Traceback" not in out


def test_calibrate_with_the_camera_and_check_config_lists_it(tmp_path):
    config = write_config(tmp_path / "config.toml", None, camera={**replay(RESTING), "realtime": False},
                          model=MODEL)
    before = moodcast("check-config", str(config))
    assert "calibration none (moodcast calibrate" in before.stdout, before.stdout
    result = moodcast("calibrate", "--camera", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "calibrated on 26 frames" in result.stdout and (tmp_path / "state" / FILE_NAME).exists()
    listed = moodcast("check-config", str(config))
    assert "calibration 26 faces on " in listed.stdout and "applied at strength 1" in listed.stdout
    no_mqtt = moodcast("calibrate", str(config))
    assert no_mqtt.returncode == 2 and "use --camera" in no_mqtt.stderr
    reset = moodcast("calibrate", "--camera", "--reset", str(config))
    assert reset.returncode == 0 and not (tmp_path / "state" / FILE_NAME).exists()


def test_a_camera_calibration_that_cannot_be_saved_fails(tmp_path):
    """With --camera the calibration lives only as long as the command: not saved is not done."""
    config = write_config(tmp_path / "config.toml", None, camera={**replay(RESTING), "realtime": False},
                          model=MODEL)
    (tmp_path / "state" / FILE_NAME).mkdir(parents=True)  # the file's place is taken: the save fails
    result = moodcast("calibrate", "--camera", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot save the calibration" in result.stdout + result.stderr and "stored in" not in result.stdout


def test_calibrate_says_so_when_no_service_answers(tmp_path, mosquitto):
    config = write_config(tmp_path / "config.toml", mosquitto)
    result = moodcast("calibrate", str(config), timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("moodcast: no moodcast service answers under moodcast/testcam")
