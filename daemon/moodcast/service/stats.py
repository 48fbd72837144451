"""Rolling pipeline statistics: analysed fps, per-stage latency, CPU and memory of this process."""

from __future__ import annotations

import os
import resource
import time
from collections import defaultdict, deque

STAGES = ("capture", "detect", "preprocess", "classify", "track", "publish")


class PipelineStats:
    def __init__(self, window: int = 100):
        self.started = time.monotonic()
        self.frames = 0
        self._stage_ms: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self._frame_times: deque = deque(maxlen=window)
        self._cpu_mark = (time.monotonic(), _cpu_seconds())

    def record(self, stage_ms: dict[str, float]) -> None:
        self.frames += 1
        self._frame_times.append(time.monotonic())
        for stage, ms in stage_ms.items():
            self._stage_ms[stage].append(ms)

    @property
    def fps(self) -> float:
        times = self._frame_times
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def snapshot(self) -> dict:
        """Fields for the stats payload; CPU % is measured since the previous snapshot."""
        now, cpu = time.monotonic(), _cpu_seconds()
        wall = max(now - self._cpu_mark[0], 1e-6)
        cpu_percent = 100.0 * (cpu - self._cpu_mark[1]) / wall
        self._cpu_mark = (now, cpu)
        return {
            "fps": round(self.fps, 2),
            "stage_ms": {s: round(sum(v) / len(v), 2) if (v := self._stage_ms.get(s)) else 0.0 for s in STAGES},
            "cpu_percent": round(cpu_percent, 1),
            "rss_mb": round(rss_bytes() / 2**20, 1),
            "uptime_s": round(now - self.started, 1),
            "frames": self.frames,
        }


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def rss_bytes() -> int:
    """Current resident set size (ru_maxrss would be the peak, not the current value)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
