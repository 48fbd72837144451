"""Idle back-off, timed on a real replay through the real daemon: empty room, a face, empty again.

The replay runs in virtual time (realtime = false), so every analysed frame has an exact
timestamp: at 4 fps and 1 idle fps they are all multiples of 0.25 s, and the frame count says
exactly when the rate dropped and when it came back.
"""

import logging
import shutil

from moodcast import config as config_module
from moodcast.config import CameraConfig
from moodcast.service.daemon import Daemon
from moodcast.vision.camera import IdleBackoff
from tests.daemon_process import write_config
from tests.media import SAMPLES


def test_backoff_needs_idle_after_s_without_a_face_and_a_face_ends_it():
    backoff = IdleBackoff(CameraConfig(idle_after_s=10.0))
    assert not backoff.idle(0, 100.0)  # the clock starts at the first frame, not at 0
    assert not backoff.idle(0, 109.9) and backoff.idle(0, 110.0)
    assert not backoff.idle(1, 111.0) and not backoff.idle(0, 120.9) and backoff.idle(0, 121.0)
    assert not IdleBackoff(CameraConfig(idle_after_s=0.0)).idle(0, 1e6)  # 0 turns it off


def test_replay_drops_to_idle_rate_and_the_first_face_frame_restores_it(tmp_path, caplog):
    frames = tmp_path / "frames"
    frames.mkdir()
    for name, sample in (("1_empty.png", "02_coffee.png"), ("2_face.png", "01_astronaut.png"),
                         ("3_empty.png", "02_coffee.png")):
        shutil.copy(SAMPLES / sample, frames / name)
    path = write_config(tmp_path / "config.toml", None,
                        camera={"source": "replay", "path": str(frames), "realtime": False, "image_seconds": 20.0,
                                "max_fps": 4.0, "idle_after_s": 5.0, "idle_fps": 1.0})
    daemon = Daemon(config_module.load(path))
    with caplog.at_level(logging.INFO, logger="moodcast"):
        assert daemon.run() == 0
    # 0-5 s at 4 fps: 21 frames, idle from the one at 5.0; 6-19 s at 1 fps: 14; the face at 20.0 is
    # seen on the first idle frame and restores 4 fps until 39.75: 80; empty again, idle once
    # 5 s have passed since the last face (44.75): 20 more; then 45.75-59.75 at 1 fps: 15.
    assert daemon.stats.frames == 21 + 14 + 80 + 20 + 15
    paces = [r.getMessage() for r in caplog.records if "frames/s" in r.getMessage()]
    assert paces == ["nobody in view for 5 s: analysing 1.0 frames/s", "face in view: analysing 4.0 frames/s",
                     "nobody in view for 5 s: analysing 1.0 frames/s"]
    assert daemon.camera.fps == 1.0  # still idle at the end: the stats report rate_fps 1.0
