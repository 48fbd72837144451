"""Frame sources behind one interface, and the supervisor that paces, retries and pauses them.

Live cameras (OpenCV device or GStreamer pipeline, picamera2) are read by a thread that keeps
only the newest frame: the analysis loop never sees stale buffered frames and never blocks
inside a driver call, so a stalled camera is noticed (and the systemd watchdog can fire) while
SIGTERM and commands are still handled. Replays are read in step with the loop and carry
virtual timestamps, so a replay analyses the same frames whether paced in real time or not.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodcast.config import CameraConfig
from moodcast.errors import MoodcastError
from moodcast.logs import RateLimitedLog
from moodcast.util import TextEnum, check_regular
from moodcast.vision.imagesize import image_size

log = logging.getLogger("moodcast.camera")
LIVE_KEYS = ("max_fps", "idle_after_s", "idle_fps")  # [camera] keys a reload applies without a restart


def _opencv_errors_only() -> None:
    """OpenCV's own open/read warnings duplicate ours, less clearly: errors only. OpenCV 4.11+ has
    cv2.utils.logging; up to 4.10 (the newest for numpy 1.x: Pi OS bookworm, JetPack 6's 4.8) it
    is cv2.setLogLevel, with the same levels."""
    api = getattr(cv2.utils, "logging", None)
    if api is not None:
        api.setLogLevel(api.LOG_LEVEL_ERROR)
    else:
        cv2.setLogLevel(2)  # type: ignore[attr-defined]  # LOG_LEVEL_ERROR; the stubs are 4.11+'s


_opencv_errors_only()
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # quiet: ffmpeg's "moov atom not found" is our SourceError, once
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}  # vision.imagesize reads each
# A replay still larger than this is refused: a 48 MP phone photo passes, a 12000x12000 one (961 MB
# decoded) does not. Formats other than JPEG are decoded whole before they are shrunk.
MAX_STILL_PIXELS = 50_000_000
NAMED_PER_PASS = 10  # unusable stills named in one pass of a replay; the rest are counted


class SourceError(MoodcastError):
    """The source failed; `fatal` errors (a replay file that cannot be read) are not retried."""

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal


@dataclass
class Frame:
    image: np.ndarray  # BGR, as OpenCV delivers it
    timestamp: float  # seconds; monotonic for live cameras, virtual (from 0) for replays
    index: int
    capture_ms: float = 0.0  # decoding (replay) or waiting on the driver (live) for this frame


class TickReason(TextEnum):
    PAUSED = "paused"  # privacy pause: the camera is released
    RETRYING = "retrying"  # the camera failed to open or read; it is retried with backoff
    STALLED = "stalled"  # no frame within read_timeout_s


@dataclass
class Tick:
    """Yielded instead of a frame so the loop stays alive while there is nothing to analyse."""

    reason: TickReason


class OpenCVCamera:
    """A V4L2 device (index or /dev/videoN) or a GStreamer pipeline ending in appsink."""

    def __init__(self, target: int | str, api: int, width: int, height: int, name: str):
        self.target, self.api, self.width, self.height, self.name = target, api, width, height, name
        self.cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.target, self.api)
        if not cap.isOpened():
            raise SourceError(f"{self.name}: cannot open (plugged in? user in group 'video'?)")
        if self.api != cv2.CAP_GSTREAMER:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.cap = cap

    def read(self) -> np.ndarray:
        assert self.cap is not None, "read() after open()"
        ok, image = self.cap.read()
        if not ok or image is None:
            raise SourceError(f"{self.name}: read failed (unplugged?)")
        return image

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class PiCamera:
    """Raspberry Pi CSI camera through picamera2 (apt python3-picamera2; venv --system-site-packages)."""

    name = "picamera2"

    def __init__(self, width: int, height: int, index: int = 0):
        self.width, self.height, self.index = width, height, index
        self.cam: Any = None  # a Picamera2, imported only when one is used

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # only on Raspberry Pi OS
        except ImportError as e:
            raise SourceError(f"picamera2: not importable ({e}); on Pi OS: apt install python3-picamera2 "
                              "and create the venv with --system-site-packages", fatal=True) from None
        try:
            cam = Picamera2(camera_num=self.index)
            cam.configure(cam.create_video_configuration(main={"size": (self.width, self.height), "format": "RGB888"}))
            cam.start()
        except IndexError:  # Picamera2() looks the number up in libcamera's list of cameras
            raise SourceError(f"picamera2: no camera {self.index} ([camera] index; `rpicam-hello --list-cameras` "
                              "lists them from 0)") from None
        except RuntimeError as e:
            raise SourceError(f"picamera2: cannot start camera {self.index} ({e})") from None
        self.cam = cam

    def read(self) -> np.ndarray:
        try:
            return self.cam.capture_array("main")  # RGB888 is BGR byte order, as OpenCV expects
        except RuntimeError as e:
            raise SourceError(f"picamera2: capture failed ({e})") from None

    def close(self) -> None:
        if self.cam is not None:
            self.cam.close()
            self.cam = None


class Replay:
    """A video file, one image, or a directory of images, as a timeline of segments.

    A still is checked by its header before it is decoded (vision.imagesize): one larger than
    MAX_STILL_PIXELS is refused, and one larger than `size` is decoded at 1/2, 1/4 or 1/8 of its size.
    A still that cannot be shown is named once (at most NAMED_PER_PASS new ones a pass), then only
    counted: a looped directory of 10,000 broken files wrote 1.93 million warnings in 40 s."""

    def __init__(self, path: str | os.PathLike, image_seconds: float, loop: bool, size: tuple[int, int] | None = None):
        self.path, self.image_seconds, self.loop = Path(path), image_seconds, loop
        self.size = size  # (width, height) frames are shrunk to fit, as a camera set to it would deliver
        self._skipped: dict[Path, tuple[int, int]] = {}  # still -> (mtime_ns, size) when found unusable
        self._passes = 0
        self._summaries = RateLimitedLog(log, interval_s=600.0)  # per pass, but at most one each 10 minutes

    def check(self) -> None:
        """Decode the first frame now, so a replay that cannot play fails before `online` and READY."""
        for _ in self._video() if self._is_video() else self._stills():
            return
        raise SourceError(f"{self.path}: nothing to replay", fatal=True)

    def _fit(self, image: np.ndarray) -> np.ndarray:
        if self.size is None:
            return image
        scale = min(self.size[0] / image.shape[1], self.size[1] / image.shape[0])
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image

    def segments(self) -> Iterator[tuple[float, float, np.ndarray]]:
        """(start, end, image): each still stays in view for `image_seconds`, a video frame for 1/fps."""
        offset = 0.0
        while True:
            end = 0.0
            self._passes += 1
            for start, end, image in self._video() if self._is_video() else self._stills():
                yield offset + start, offset + end, image
            offset += end
            if not self.loop:
                return

    def _is_video(self) -> bool:
        return self.path.is_file() and self.path.suffix.lower() not in IMAGE_SUFFIXES

    def _still_files(self) -> list[tuple[Path, os.stat_result]]:
        if self.path.is_dir():  # only regular files: a FIFO named x.jpg would hang imread
            files = []
            with os.scandir(self.path) as entries:
                for e in entries:
                    if Path(e.name).suffix.lower() in IMAGE_SUFFIXES and e.is_file():
                        try:
                            files.append((Path(e.path), e.stat()))
                        except OSError:  # gone since the listing (a folder being synced): not a fault
                            continue
            files.sort()
            if not files:
                raise SourceError(f"{self.path}: no images (.jpg, .png, ...) in this directory", fatal=True)
            return files
        try:
            return [(self.path, check_regular(self.path))]
        except FileNotFoundError:
            raise SourceError(f"{self.path}: no such file or directory", fatal=True) from None
        except OSError as e:
            raise SourceError(f"{self.path}: {e.strerror or e}", fatal=True) from None

    def _stills(self) -> Iterator[tuple[float, float, np.ndarray]]:
        files = self._still_files()
        shown = named = 0
        problem = ""
        for f, st in files:
            if self._skipped.get(f) == (st.st_mtime_ns, st.st_size):  # said before; unchanged since
                continue
            image, problem = self._read_still(f)
            if image is None:  # one bad file in a directory must not end the whole replay
                self._skipped[f] = (st.st_mtime_ns, st.st_size)
                named += 1
                if named <= NAMED_PER_PASS:
                    log.warning("%s: %s; skipped", f, problem)
                continue
            yield shown * self.image_seconds, (shown + 1) * self.image_seconds, image
            shown += 1
        if not shown:
            text = f"{self.path}: no readable image" if len(files) > 1 else f"{files[0][0]}: {problem}"
            raise SourceError(text, fatal=True)
        if shown < len(files):
            self._summaries.warning("pass", "replay pass %d: %d of %d images skipped (unreadable or too large; the "
                                    "first of them are named above, once each)", self._passes,
                                    len(files) - shown, len(files))

    def _read_still(self, path: Path) -> tuple[np.ndarray | None, str]:
        """(the still fitted to `size`, "") or (None, why it cannot be shown)."""
        try:
            with path.open("rb") as f:
                size = image_size(f)
        except OSError as e:
            return None, f"cannot read ({e.strerror or e})"
        if size is None:
            return None, "not a readable image"
        if size[0] * size[1] > MAX_STILL_PIXELS:
            return None, (f"{size[0]}x{size[1]} pixels is larger than a replay still may be "
                          f"({MAX_STILL_PIXELS / 1e6:g} megapixels)")
        image = cv2.imread(str(path), decode_flag(size, self.size))
        return (None, "not a readable image") if image is None else (self._fit(image), "")

    def _video(self) -> Iterator[tuple[float, float, np.ndarray]]:
        cap = cv2.VideoCapture(str(self.path))
        try:
            ok, image = cap.read() if cap.isOpened() else (False, None)
            if not ok:
                raise SourceError(f"{self.path}: not a readable video or image", fatal=True)
            fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            index = 0
            while ok and image is not None:
                yield index / fps, (index + 1) / fps, self._fit(image)
                index += 1
                ok, image = cap.read()
        finally:
            cap.release()


def decode_flag(size: tuple[int, int], target: tuple[int, int] | None) -> int:
    """cv2.imread's flag for a still of `size` that will be shrunk to fit `target`: decoded at 1/2, 1/4
    or 1/8 of its size where that is still no smaller than the fitted frame. JPEG decodes reduced
    directly (a fraction of the memory); other formats are decoded whole and then shrunk."""
    if target is None:
        return cv2.IMREAD_COLOR
    (w, h), (tw, th) = size, target
    shrink = min(max(w / tw, h / th), max(h / tw, w / th))  # either way round: EXIF may turn it
    return next((flag for factor, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                                           (2, cv2.IMREAD_REDUCED_COLOR_2)) if shrink >= factor), cv2.IMREAD_COLOR)


def make_live_source(cfg: CameraConfig):
    if cfg.source == "picamera2":
        return PiCamera(cfg.width, cfg.height, cfg.index)
    if cfg.source == "gstreamer":
        if "appsink" not in cfg.pipeline:
            raise SourceError("[camera] pipeline: a GStreamer pipeline ending in 'appsink' is required", fatal=True)
        return OpenCVCamera(cfg.pipeline, cv2.CAP_GSTREAMER, cfg.width, cfg.height, "gstreamer pipeline")
    target = int(cfg.device) if cfg.device.isdigit() else cfg.device
    return OpenCVCamera(target, cv2.CAP_V4L2, cfg.width, cfg.height, f"camera {cfg.device}")


class Camera:
    """Yields frames at most `max_fps` per second; retries failing live sources with backoff."""

    def __init__(self, cfg: CameraConfig, stop: threading.Event):
        self.cfg, self.stop = cfg, stop
        self.paused = threading.Event()
        self.idle = False  # set by the frame loop (IdleBackoff): nobody in view, analyse at idle_fps
        self.dropped = 0  # live frames that arrived while the loop was busy, never analysed
        self._replay_source: Replay | None = None

    def reconfigure(self, cfg: CameraConfig) -> Callable[[], None]:
        """A reload: the swap to the new rates (LIVE_KEYS), from the next frame on. The other keys need a
        restart (restart_needed), as the source is open; nothing here can fail."""
        live = dataclasses.replace(self.cfg, **{key: getattr(cfg, key) for key in LIVE_KEYS})

        def swap() -> None:
            self.cfg = live
        return swap

    def restart_needed(self, cfg: CameraConfig) -> list[str]:
        """The keys of a new [camera] that differ and that only a restart applies."""
        return sorted(f.name for f in dataclasses.fields(cfg)
                      if f.name not in LIVE_KEYS and getattr(cfg, f.name) != getattr(self.cfg, f.name))

    @property
    def fps(self) -> float:
        """The analysed rate now: read per frame, so a change applies from the next frame on."""
        return min(self.cfg.max_fps, self.cfg.idle_fps) if self.idle else self.cfg.max_fps

    @property
    def period(self) -> float:
        return 1.0 / self.fps

    def replay_source(self) -> Replay:
        """One Replay for check() and the frames: a still named unusable by check() is not named again."""
        if self._replay_source is None:
            c = self.cfg
            self._replay_source = Replay(c.path, c.image_seconds, c.loop, (c.width, c.height))
        return self._replay_source

    def check(self) -> None:
        """Before start-up: a replay must be playable; a live camera is retried, so it is not opened here."""
        if self.cfg.source == "replay":
            self.replay_source().check()

    def frames(self) -> Generator[Frame | Tick, None, None]:
        if self.cfg.source == "replay":
            yield from self._replay()
        else:
            yield from self._live()

    def _replay(self) -> Iterator[Frame | Tick]:
        """Sample the replay's timeline every `period` seconds of virtual time."""
        start, index = time.monotonic(), 0
        next_ts = 0.0
        segments = self.replay_source().segments()
        while True:
            t0 = time.perf_counter()
            segment = next(segments, None)
            if segment is None:
                return
            seg_start, seg_end, image = segment
            decode_ms = (time.perf_counter() - t0) * 1e3  # a still is decoded once, however long it shows
            while seg_start <= next_ts < seg_end:
                if self.paused.is_set():
                    paused_at = time.monotonic()
                    while self.paused.is_set() and not self.stop.is_set():
                        yield Tick(TickReason.PAUSED)
                        self.stop.wait(self.period)
                    start += time.monotonic() - paused_at  # resume in real time, not with a catch-up burst
                if self.cfg.realtime:
                    self.stop.wait(max(0.0, start + next_ts - time.monotonic()))
                if self.stop.is_set():
                    return
                yield Frame(image, next_ts, index, decode_ms)
                decode_ms = 0.0
                index += 1
                # += because the rate may change between frames (idle back-off); rounded to 1 us so
                # that ten steps of 0.1 s end at 1.0, not 0.9999999999999999 (an extra frame)
                next_ts = round(next_ts + self.period, 6)

    def _live(self) -> Iterator[Frame | Tick]:
        delay = self.cfg.retry_initial_s
        while not self.stop.is_set():
            if self.paused.is_set():
                yield Tick(TickReason.PAUSED)
                self.stop.wait(self.period)
                continue
            source = make_live_source(self.cfg)
            try:
                source.open()
            except SourceError as e:
                source.close()
                if e.fatal:
                    raise
                log.warning("%s; retrying in %.1f s", e, delay)
                yield Tick(TickReason.RETRYING)
                self.stop.wait(delay)
                delay = min(delay * 2, self.cfg.retry_max_s)
                continue
            log.info("%s opened", source.name)
            delay = self.cfg.retry_initial_s
            error = yield from self._read_live(source)
            if error:
                log.warning("%s; reopening", error)
                yield Tick(TickReason.RETRYING)

    def _read_live(self, source) -> Generator[Frame | Tick, None, str | None]:
        """Frames until stopped, paused or the source fails; returns the failure, if any."""
        reader = LatestFrameReader(source)
        reader.start()
        try:
            index, next_at = 0, time.monotonic()
            while not self.stop.is_set() and not self.paused.is_set():
                self.stop.wait(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at + self.period, time.monotonic())
                t0 = time.perf_counter()
                image = reader.take(timeout=self.cfg.read_timeout_s, stop=self.stop)
                if reader.error:
                    return reader.error
                if image is None:
                    yield Tick(TickReason.STALLED)
                    continue
                yield Frame(image, time.monotonic(), index, (time.perf_counter() - t0) * 1e3)
                index += 1
            if self.paused.is_set():
                log.info("%s released (paused)", source.name)
            return None
        finally:
            self.dropped += reader.dropped
            reader.stop()


class IdleBackoff:
    """After `idle_after_s` without a face the camera is analysed at `idle_fps`; a face restores full rate.

    An empty room otherwise costs a detection at the full rate all day. The first frame with a
    face restores the full rate, so at worst a newcomer waits one idle period to be seen.
    """

    def __init__(self, cfg: CameraConfig):
        self.cfg = cfg
        self.last_face_at: float | None = None  # the first frame starts the clock: full rate at start-up

    def reconfigure(self, cfg: CameraConfig) -> Callable[[], None]:
        def swap() -> None:
            self.cfg = cfg
        return swap

    def idle(self, faces: int, t: float) -> bool:
        """Whether the camera should run at the idle rate after the frame at `t` with `faces` faces."""
        if faces or self.last_face_at is None:
            self.last_face_at = t
        return self.cfg.idle_after_s > 0 and t - self.last_face_at >= self.cfg.idle_after_s


class LatestFrameReader:
    """Reads a live source on its own thread and keeps only the newest frame.

    The frame loop opens the source (Camera._live) before this thread starts; from then on only
    this thread touches it, and it also closes it: releasing a capture while another thread is
    inside its read() can crash the driver.
    """

    def __init__(self, source):
        self.source, self.error, self.dropped = source, None, 0
        self._frame: np.ndarray | None = None
        self._cond = threading.Condition()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="camera-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            while self._running:
                try:
                    image = self.source.read()
                except SourceError as e:
                    self.error, image = e, None
                with self._cond:
                    if self._frame is not None:
                        self.dropped += 1
                    self._frame = image
                    self._cond.notify_all()
                if self.error:
                    return
        finally:
            self.source.close()

    def take(self, timeout: float, stop: threading.Event) -> np.ndarray | None:
        """The newest frame not yet taken, or None when none arrives within `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._frame is None and self.error is None and not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.25))
            image, self._frame = self._frame, None
            return image

    def stop(self) -> None:
        """Ask the thread to finish; it closes the source after its current read returns.

        A read stuck inside the driver never returns: the daemon thread is then abandoned (and
        the systemd watchdog, no longer fed, restarts the service).
        """
        self._running = False
