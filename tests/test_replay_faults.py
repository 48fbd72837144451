"""Replay faults are found before start-up, one bad image does not end a replay, replays keep to the
configured frame size and to max_fps after a pause: the real daemon, a real Mosquitto, real files."""

import logging
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest

from bench.mosquitto import Subscriber, publish
from moodcast.vision.camera import NAMED_PER_PASS, Replay, decode_flag
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


def write_huge_png(path, width: int, height: int) -> None:
    """A real, decodable grey PNG of width x height, written row by row (a few hundred KB on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    packer, row = zlib.compressobj(9), b"\x00" + b"\x80" * width  # filter byte, then grey pixels
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))


PEAK_RSS = r"""
import resource, sys
from moodcast.vision.camera import Replay
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
shapes = [image.shape for _, _, image in Replay(sys.argv[1], 1.0, loop=False, size=(640, 480)).segments()]
print(shapes, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def replay_peak(path) -> tuple[str, int]:
    """(the shapes a replay of `path` yields, its peak RSS rise in MB), in a process of its own."""
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shapes, rise = result.stdout.rsplit(" ", 1)
    return shapes, int(rise)


def test_an_absurdly_large_still_is_refused_by_its_header(tmp_path, caplog):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_huge_png(photos / "00_huge.png", 12000, 12000)  # 432 MB decoded
    shutil.copy(SAMPLES / "01_astronaut.png", photos)
    assert cv2.imread(str(photos / "00_huge.png"), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape == (1500, 1500)  # real
    with caplog.at_level(logging.WARNING, logger="moodcast.camera"):
        shapes = [image.shape for _, _, image in Replay(photos, 1.0, loop=False, size=(640, 480)).segments()]
    assert shapes == [(480, 480, 3)]
    assert [r.getMessage() for r in caplog.records] == [
        f"{photos / '00_huge.png'}: 12000x12000 pixels is larger than a replay still may be (50 megapixels); "
        "skipped", "replay pass 1: 1 of 2 images skipped (unreadable or too large; the first of them are named "
        "above, once each)"]
    shapes, rise = replay_peak(photos)
    assert rise < 50, rise  # decoded, it was +432 MB (961 MB peak in the issue)


def test_a_still_larger_than_the_camera_is_decoded_reduced(tmp_path):
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), np.full((4000, 6000, 3), 90, np.uint8))  # 72 MB decoded whole
    shapes, rise = replay_peak(big)
    assert shapes == "[(427, 640, 3)]"
    assert rise < 30, rise  # JPEG decodes at 1/8 directly: 750x500


@pytest.mark.parametrize("size, target, flag", [
    ((6000, 4000), (640, 480), cv2.IMREAD_REDUCED_COLOR_8),  # 750x500 still covers 640x427
    ((4000, 6000), (640, 480), cv2.IMREAD_REDUCED_COLOR_8),  # portrait: 320x480 fitted; either way round
    ((2600, 1900), (640, 480), cv2.IMREAD_REDUCED_COLOR_4),  # 650x475 covers the fitted 640x468
    ((2400, 1900), (640, 480), cv2.IMREAD_REDUCED_COLOR_2),  # /4 would give 600x475: less than the fitted 606x480
    ((1280, 960), (640, 480), cv2.IMREAD_REDUCED_COLOR_2),
    ((1200, 900), (640, 480), cv2.IMREAD_COLOR),
    ((6000, 4000), None, cv2.IMREAD_COLOR),  # preview: the frame as it is
])
def test_the_reduction_never_goes_below_the_fitted_frame(size, target, flag):
    assert decode_flag(size, target) == flag


def test_a_looped_replay_of_unreadable_files_names_each_once_and_then_summarises(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(300):
        (photos / f"{i:04d}_broken.jpg").write_bytes(b"\xff\xd8 not really" if i % 2 else b"")
    shutil.copy(SAMPLES / "01_astronaut.png", photos / "z_face.png")
    config = write_config(tmp_path / "config.toml", None, camera={
        "source": "replay", "path": str(photos), "realtime": False, "loop": True})
    daemon = subprocess.Popen([sys.executable, "-m", "moodcast.cli", "run", "-c", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in daemon.stdout:
            lines.append(line)
            if "running:" in line:
                break
        time.sleep(10)  # hundreds of passes with --fast
    finally:
        daemon.send_signal(signal.SIGTERM)
        lines += daemon.communicate(timeout=STOP)[0].splitlines()
    skipped = [line for line in lines if "skipped" in line]
    named = [line for line in skipped if "_broken.jpg: not a readable image; skipped" in line]
    assert len(named) == NAMED_PER_PASS and len(set(named)) == NAMED_PER_PASS  # each named once, then counted
    assert len(skipped) == NAMED_PER_PASS + 1, skipped[-3:]  # and one summary (at most one per 10 minutes)
    assert "replay pass 1: 300 of 301 images skipped" in skipped[-1]
