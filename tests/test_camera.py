"""Frame sources: replay pacing and virtual time, live-camera threading, retries, pause, stalls."""

import sys
import threading
import time

import numpy as np
import pytest

from moodcast.config import CameraConfig, parse
from moodcast.vision.camera import Camera, Frame, LatestFrameReader, SourceError, Tick, make_live_source
from tests.media import SAMPLES


def replay_cfg(**kw):
    return CameraConfig(**{"source": "replay", "path": str(SAMPLES), "realtime": False, "max_fps": 5.0,
                           "image_seconds": 2.0, **kw})


def test_stills_become_a_stream_at_max_fps_in_virtual_time():
    frames = list(Camera(replay_cfg(), threading.Event()).frames())
    images = len(list(SAMPLES.glob("*.png")))
    assert len(frames) == images * 2 * 5
    assert [f.timestamp for f in frames[:3]] == pytest.approx([0.0, 0.2, 0.4])
    assert frames[-1].timestamp == pytest.approx(images * 2 - 0.2)
    assert frames[0].capture_ms > 0 and frames[1].capture_ms == 0  # a still is decoded once


def test_realtime_replay_keeps_pace():
    cfg = replay_cfg(realtime=True, path=str(SAMPLES / "01_astronaut.png"), image_seconds=1.0, max_fps=10)
    t0 = time.monotonic()
    frames = list(Camera(cfg, threading.Event()).frames())
    assert len(frames) == 10
    assert 0.85 <= time.monotonic() - t0 <= 2.0


def test_missing_replay_and_bad_image_are_fatal(tmp_path):
    with pytest.raises(SourceError, match="no such file or directory") as e:
        list(Camera(replay_cfg(path=str(tmp_path / "nope")), threading.Event()).frames())
    assert e.value.fatal
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="broken.png: not a readable image"):
        list(Camera(replay_cfg(path=str(tmp_path)), threading.Event()).frames())


def test_pause_yields_ticks_and_resumes_where_it_was():
    stop = threading.Event()
    cam = Camera(replay_cfg(realtime=True, max_fps=20, image_seconds=0.5), stop)
    items = cam.frames()
    assert isinstance(next(items), Frame)
    cam.paused.set()
    assert next(items) == Tick("paused")
    cam.paused.clear()
    assert isinstance(next(items), Frame)
    stop.set()


def test_unavailable_camera_is_retried_with_backoff():
    stop = threading.Event()
    cam = Camera(CameraConfig(source="opencv", device="/dev/video99", retry_initial_s=0.1, retry_max_s=1.0), stop)
    items = cam.frames()
    t0 = time.monotonic()
    ticks = [next(items) for _ in range(3)]
    assert ticks == [Tick("retrying")] * 3
    assert time.monotonic() - t0 >= 0.1 + 0.2  # 0.1 s, then 0.2 s: exponential
    stop.set()


class FakeDriver:
    """A stand-in camera driver: delivers frames until told to hang, like a wedged USB camera."""

    name = "fake"

    def __init__(self):
        self.hang = threading.Event()
        self.closed_by = None
        self.reading = threading.Lock()

    def read(self):
        with self.reading:
            while self.hang.is_set():
                time.sleep(0.01)
            time.sleep(0.01)
            return np.zeros((4, 4, 3), np.uint8)

    def close(self):
        assert not self.reading.locked(), "closed while a read was in progress"
        self.closed_by = threading.current_thread().name


def test_reader_keeps_newest_frame_and_closes_the_source_itself():
    driver = FakeDriver()
    reader = LatestFrameReader(driver)
    reader.start()
    stop = threading.Event()
    assert reader.take(1.0, stop) is not None
    time.sleep(0.1)
    assert reader.dropped > 0  # frames nobody asked for are replaced, not queued
    driver.hang.set()
    time.sleep(0.1)  # the read already in flight still delivers; drain it
    reader.take(0.01, stop)
    assert reader.take(0.2, stop) is None  # a stalled driver: no frame within the timeout
    reader.stop()
    driver.hang.clear()
    reader._thread.join(2)
    assert driver.closed_by == "camera-reader"


class TwoConnectorPi:
    """picamera2 as on a Pi 5 with a camera module on each connector (the driver cannot run here):
    Picamera2(camera_num) looks the number up in libcamera's camera list, as the real one does."""

    CAMERAS = [{"Model": "imx708", "Num": 0}, {"Model": "imx219", "Num": 1}]
    opened: list[int] = []

    class Picamera2:
        def __init__(self, camera_num=0):
            self.num = TwoConnectorPi.CAMERAS[camera_num]["Num"]  # IndexError for a camera that is not there
            TwoConnectorPi.opened.append(self.num)

        def create_video_configuration(self, main):
            return {"main": main}

        def configure(self, config):
            self.size = config["main"]["size"]

        def start(self):
            pass

        def capture_array(self, name="main"):
            return np.full((self.size[1], self.size[0], 3), self.num, np.uint8)

        def close(self):
            pass


@pytest.mark.parametrize("index", [0, 1])
def test_picamera2_opens_the_camera_that_index_names(monkeypatch, index):
    monkeypatch.setitem(sys.modules, "picamera2", TwoConnectorPi)
    TwoConnectorPi.opened = []
    source = make_live_source(parse({"camera": {"source": "picamera2", "index": index}}).camera)
    source.open()
    try:
        assert TwoConnectorPi.opened == [index] and source.read()[0, 0, 0] == index
    finally:
        source.close()


def test_picamera2_without_that_camera_says_which_key(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", TwoConnectorPi)
    source = make_live_source(parse({"camera": {"source": "picamera2", "index": 2}}).camera)
    with pytest.raises(SourceError, match=r"^picamera2: no camera 2 \(\[camera\] index; `rpicam-hello "
                                          r"--list-cameras` lists them from 0\)$"):
        source.open()
