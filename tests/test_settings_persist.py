"""The privacy pause, policy and autoplay survive a restart of the real daemon (SIGTERM or a crash)."""

import json
import signal
import time

import pytest

from bench.mosquitto import Subscriber, publish
from tests.daemon_process import STARTUP, STOP, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}


def frames_analysed(broker, sub) -> int:
    sub.clear()
    publish(broker, f"{BASE}/set/snapshot_stats", "")
    return sub.wait_for(f"{BASE}/stats", timeout=10).json()["frames"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_pause_policy_and_autoplay_survive_a_restart(tmp_path, mosquitto, stop, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["mood"] == "happy" and m.json()["faces"] == 1, timeout=STARTUP)
        for command, value in (("policy", "match"), ("autoplay", "on"), ("paused", "ON")):
            publish(mosquitto, f"{BASE}/set/{command}", value)
        paused = sub.wait_for(f"{BASE}/state", lambda m: m.json()["paused"], timeout=10).json()
        # a released camera must not look like "happy, face on" in Home Assistant
        assert (paused["mood"], paused["faces"], paused["confidence"]) == ("no_face", 0, 0.0), paused
        assert set(paused["scores"].values()) == {0.0}
        assert (paused["policy"], paused["autoplay"]) == ("match", True)
        daemon.signal(stop)
        daemon.wait(STOP)
    saved = json.loads((tmp_path / "state" / "settings.json").read_text())
    assert saved == {"paused": True, "policy": "match", "autoplay": True}
    assert (tmp_path / "state" / "settings.json").stat().st_mode & 0o777 == 0o600
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        state = sub.wait_for(f"{BASE}/state", lambda m: not m.retain, timeout=STARTUP).json()  # the new process's own
        assert (state["paused"], state["policy"], state["autoplay"], state["faces"]) == (True, "match", True, 0)
        time.sleep(2)
        assert frames_analysed(mosquitto, sub) == 0  # the camera was never read
        publish(mosquitto, f"{BASE}/set/paused", "OFF")
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["faces"] == 1 and not m.json()["paused"], timeout=15)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
        assert "restored settings" in daemon.output()
    assert json.loads((tmp_path / "state" / "settings.json").read_text())["paused"] is False


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe",
                                     b'{"paused": "no", "policy": "match", "autoplay": false}', b" " * 10000])
def test_an_untrustworthy_settings_file_starts_paused(tmp_path, mosquitto, content, daemon_process):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "settings.json").write_bytes(content)
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        state = sub.wait_for(f"{BASE}/state", timeout=STARTUP).json()
        assert state["paused"] is True and state["faces"] == 0
        time.sleep(1)
        assert frames_analysed(mosquitto, sub) == 0
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
        out = daemon.output()
    assert "starting with the privacy pause ON to be safe" in out and "Traceback" not in out


def test_unwritable_state_dir_is_reported_and_the_command_still_applies(tmp_path, mosquitto, daemon_process):
    (tmp_path / "state").write_text("a file where the state directory should be")
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", timeout=STARTUP)
        publish(mosquitto, f"{BASE}/set/paused", "ON")
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["paused"], timeout=10)
        error = sub.wait_for(f"{BASE}/event", lambda m: m.json().get("component") == "state", timeout=10).json()
        assert "will not survive a restart" in error["message"]
        assert daemon.running()
