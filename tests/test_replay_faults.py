"""Replay faults are found before start-up, one bad image does not end a replay, replays keep to the
configured frame size and to max_fps after a pause: the real daemon, a real Mosquitto, real files."""

import shutil
import signal
import time

import cv2
import numpy as np
import pytest

from bench.mosquitto import Subscriber, publish
from moodcast.vision.camera import Replay
from tests.daemon_process import STARTUP, STOP, run_cli, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.png", "no such file or directory"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no images"),
    (lambda d: (d / "zero.png").write_bytes(b"") or d / "zero.png", "not a readable image"),
])
def test_a_replay_that_cannot_play_fails_before_online(tmp_path, mosquitto, make, message):
    path = make(tmp_path)
    config = write_config(tmp_path / "config.toml", mosquitto, camera={"source": "replay", "path": str(path)})
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub:
        result = run_cli("run", "-c", str(config), timeout=600)
        time.sleep(1)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"moodcast: {path}") and message in result.stderr
        assert f"{BASE}/availability" not in sub.messages  # never said `online`


def test_one_unreadable_image_is_skipped(tmp_path, mosquitto, daemon_process):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "00_broken.png").write_bytes(b"\x89PNG garbage")
    shutil.copy(SAMPLES / "01_astronaut.png", photos)
    config = write_config(tmp_path / "config.toml", mosquitto, camera={
        "source": "replay", "path": str(photos), "realtime": False, "image_seconds": 2.0})
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        assert daemon.wait(STARTUP + 60) == 0
        out = daemon.output()
        assert sub.wait_for(f"{BASE}/state", lambda m: m.json()["mood"] == "happy", timeout=10)
    assert "00_broken.png: not a readable image; skipped" in out


def test_replay_frames_fit_the_configured_camera_size(tmp_path):
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.full((3000, 4000, 3), 128, np.uint8))
    (_, _, image), = Replay(str(big), 1.0, loop=False, size=(640, 480)).segments()
    assert image.shape == (480, 640, 3)


def test_real_time_replay_keeps_max_fps_after_a_pause(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera={
        "source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True,
        "max_fps": 2.0})
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", timeout=STARTUP)
        publish(mosquitto, f"{BASE}/set/paused", "ON")
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["paused"], timeout=30)
        time.sleep(10)
        sub.clear()
        publish(mosquitto, f"{BASE}/set/paused", "OFF")
        publish(mosquitto, f"{BASE}/set/snapshot_stats", "")
        before = sub.wait_for(f"{BASE}/stats", timeout=30).json()["frames"]
        time.sleep(4)
        sub.clear()
        publish(mosquitto, f"{BASE}/set/snapshot_stats", "")
        after = sub.wait_for(f"{BASE}/stats", timeout=30).json()["frames"]
        assert after - before <= 2.0 * 6, (before, after)  # ~4 s at 2 fps plus slack; a catch-up burst is 20+
        daemon.signal(signal.SIGTERM)
        daemon.wait(STOP)
