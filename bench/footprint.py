"""Footprint of the real daemon: start-to-READY, RSS after start and over a soak, CPU with and without a face.

The soak is shorter than the issue's 10 minutes so that the whole benchmark fits in 10 minutes
(`--soak-s`; sampled every `--sample-s`). "No growth" is judged from a least-squares slope over
the samples after warm-up; a few minutes cannot prove months, so the slope (MB/h) is reported as is.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from bench.daemons import Daemon, Recorder
from bench.scenes import Scene
from bench.stats import slope

WARMUP_S = 20.0  # first frames, lazy imports and allocator growth settle before CPU and RSS are judged


def write_stills(scenes: list[Scene], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for k, s in enumerate(scenes):
        cv2.imwrite(str(directory / f"{k:03d}.png"), s.image)
    return directory


class Watched:
    """A looping replay daemon, sampled: (seconds since READY, RSS MB, CPU seconds)."""

    def __init__(self, workdir: Path, name: str, scenes: list[Scene], broker, extra: dict | None = None,
                 image_seconds: float = 2.0):
        stills = write_stills(scenes, workdir / f"{name}_frames")
        camera = {"path": str(stills), "image_seconds": image_seconds, "realtime": True, "loop": True}
        self.daemon = Daemon(workdir, name, camera, broker.host, broker.port, extra)
        self.ready_s = self.daemon.wait_ready()
        self.t0 = self.daemon.notify.ready_at()
        self.rss_at_ready = self.daemon.rss_mb()
        self.samples: list[tuple[float, float, float]] = []
        self.recorder = Recorder(broker.host, broker.port, [f"{self.daemon.base}/stats"])
        self.sample()

    def sample(self) -> None:
        self.samples.append((time.monotonic() - self.t0, self.daemon.rss_mb(), self.daemon.cpu_s()))

    def stop(self) -> None:
        self.recorder.stop()
        self.daemon.stop()

    def cpu_percent(self) -> float | None:
        """Percent of one core between the first sample after warm-up and the last."""
        after = [s for s in self.samples if s[0] >= WARMUP_S]
        if len(after) < 2:
            return None
        (ta, _, ca), (tb, _, cb) = after[0], after[-1]
        return round(100.0 * (cb - ca) / (tb - ta), 1)

    def report(self) -> dict:
        after = [s for s in self.samples if s[0] >= WARMUP_S]
        rss_slope_h = slope([s[0] for s in after], [s[1] for s in after]) * 3600
        window_s = after[-1][0] - after[0][0] if len(after) > 1 else 0.0
        stats = [b for _, topic, b in self.recorder.messages if isinstance(b, dict)]
        return {
            "ready_s": round(self.ready_s, 3),
            "rss_mb_at_ready": round(self.rss_at_ready, 1),
            "rss_mb_after_warmup": round(after[0][1], 1) if after else None,
            "rss_mb_end": round(self.samples[-1][1], 1),
            "rss_mb_max": round(max(s[1] for s in self.samples), 1),
            "rss_slope_mb_per_h": round(rss_slope_h, 2),
            "rss_fit_growth_mb": round(rss_slope_h * window_s / 3600, 2),
            "fit_window_s": round(window_s, 1),
            "cpu_percent": self.cpu_percent(),
            "samples": [[round(t, 1), round(r, 2), round(c, 2)] for t, r, c in self.samples],
            "daemon_stats": [{k: b.get(k) for k in ("fps", "stage_ms", "cpu_percent", "rss_mb")} for b in stats],
        }


def cold_starts(workdir: Path, scenes: list[Scene], broker, extra: dict | None, n: int = 3) -> list[float]:
    """Start-to-READY of `n` daemons started one at a time with no other daemon running."""
    stills = write_stills(scenes[:1], workdir / "start_frames")
    camera = {"path": str(stills), "image_seconds": 1.0, "realtime": True, "loop": True}
    times = []
    for k in range(n):
        daemon = Daemon(workdir, f"start{k}", camera, broker.host, broker.port, extra)
        try:
            times.append(round(daemon.wait_ready(), 3))
        finally:
            daemon.stop()
    return times
