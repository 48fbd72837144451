"""The privacy pause, policy and autoplay survive a restart of the real daemon (SIGTERM or a crash)."""

import json
import os
import signal
import subprocess
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
        sub.wait_for(f"{BASE}/event", lambda m: "will not survive a restart" in m.json().get("message", ""),
                     timeout=10)
        errors = [m.json()["message"] for m in sub.messages.get(f"{BASE}/event", [])
                  if m.json().get("component") == "state"]
        assert "unreadable" in errors[0] and "privacy pause ON" in errors[0]  # said at start, once connected
        assert daemon.running()


def test_a_fifo_as_settings_file_starts_paused_and_says_so(tmp_path, mosquitto, daemon_process):
    """Opening a FIFO nobody writes to waits for ever: `run` used to hang before READY."""
    (tmp_path / "state").mkdir()
    os.mkfifo(tmp_path / "state" / "settings.json")
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        assert sub.wait_for(f"{BASE}/state", timeout=STARTUP).json()["paused"] is True
        error = sub.wait_for(f"{BASE}/event", lambda m: m.json().get("component") == "state", timeout=10).json()
        assert error["message"].endswith("settings.json: unreadable (not a regular file (a FIFO)); starting with the "
                                         "privacy pause ON to be safe (send set/paused OFF to resume)")
        publish(mosquitto, f"{BASE}/set/paused", "OFF")  # and the next save puts a real file there
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["paused"] is False, timeout=10)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
    assert json.loads((tmp_path / "state" / "settings.json").read_text())["paused"] is False


def test_temporary_files_of_killed_saves_are_removed_at_start(tmp_path, mosquitto, daemon_process):
    state = tmp_path / "state"
    state.mkdir()
    dead = subprocess.Popen(["true"])  # a pid that has certainly exited
    dead.wait()
    stale = [state / f".settings.json.{dead.pid}.tmp", state / f".spotify-token.json.{dead.pid}.tmp"]
    for path in stale:
        path.write_text('{"paused": fa')  # cut off mid-write by a kill -9
    alive = state / f".settings.json.{os.getpid()}.tmp"  # another process saving right now: not ours to remove
    alive.write_text("{}")
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/state"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", timeout=STARTUP)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
        out = daemon.output()
    assert not any(path.exists() for path in stale) and alive.exists()
    assert out.count("left by a process that was killed while saving") == 2
