"""The recommendation worker's plumbing: its messages, its inbox and the counters the stats report.

The frame loop (and paho's thread, through the daemon) only put small messages here; the one worker
thread takes them in batches, so a slow Spotify or YouTube call never delays the frame loop.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

# -- the worker's messages (from any thread), each with the perf_counter time its latency counts from

@dataclass(frozen=True)
class MoodMessage:
    mood: str
    t0: float


@dataclass(frozen=True)
class AwayMessage:
    away: bool
    t0: float


@dataclass(frozen=True)
class RefreshMessage:  # the policy or autoplay changed
    t0: float


@dataclass(frozen=True)
class TimerMessage:  # a timer is due (uplift step, playback retry)
    t0: float


@dataclass(frozen=True)
class StopMessage:
    pass


WorkerMessage = MoodMessage | AwayMessage | RefreshMessage | TimerMessage | StopMessage


class Counters:
    """What the stats payload reports about recommendations; written by the worker, read by the frame loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float | int | None] = {
            "recommendations": 0, "last_latency_ms": None, "last_own_ms": None,
            "last_play_latency_ms": None, "last_play_own_ms": None}

    def recommended(self, total_ms: float, api_ms: float) -> None:
        with self._lock:
            self._values["recommendations"] = int(self._values["recommendations"] or 0) + 1
            self._values["last_latency_ms"] = round(total_ms, 1)
            self._values["last_own_ms"] = round(total_ms - api_ms, 1)

    def played(self, total_ms: float, api_ms: float) -> None:
        with self._lock:
            self._values["last_play_latency_ms"] = round(total_ms, 1)
            self._values["last_play_own_ms"] = round(total_ms - api_ms, 1)

    def snapshot(self) -> dict[str, float | int | None]:
        with self._lock:
            return dict(self._values)


class WorkerInbox:
    """Messages for the worker, from any thread; never blocks the sender."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[WorkerMessage] = queue.SimpleQueue()

    def put(self, message: WorkerMessage) -> None:
        self._queue.put(message)

    def next_batch(self, timeout: float | None) -> list[WorkerMessage]:
        """The next message (or a timer tick after `timeout`) plus whatever else is already waiting, with
        only the newest mood kept: after a slow API call the moods that flickered by meanwhile are stale."""
        try:
            messages = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return [TimerMessage(time.perf_counter())]
        while True:
            try:
                messages.append(self._queue.get_nowait())
            except queue.Empty:
                break
        moods = [m for m in messages if isinstance(m, MoodMessage)]
        return [m for m in messages if not isinstance(m, MoodMessage) or m is moods[-1]]
