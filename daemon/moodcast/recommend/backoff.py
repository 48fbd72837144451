"""When may a remote API be called again after it failed?

Waits double from `initial_s` after each consecutive failure, and a server's own Retry-After is
honoured, but nothing waits longer than `max_s`: a daemon must come back by itself, and Spotify
has been seen answering 429 with Retry-After of an hour or more.
"""

from __future__ import annotations

import time


class Backoff:
    def __init__(self, initial_s: float, max_s: float, clock=time.monotonic):
        self.initial_s, self.max_s, self._clock = initial_s, max_s, clock
        self.failures = 0
        self.blocked_until = 0.0

    def wait_s(self) -> float:
        """Seconds until the next call is allowed (0 = now)."""
        return max(0.0, self.blocked_until - self._clock())

    def fail(self, retry_after: float | None = None) -> float:
        """Record a failure; returns the wait it imposes."""
        if retry_after is None:
            delay = self.initial_s * 2 ** min(self.failures, 30)
        else:
            delay = max(0.0, retry_after)
        delay = min(delay, self.max_s)
        self.failures += 1
        self.blocked_until = self._clock() + delay
        return delay

    def succeed(self) -> None:
        self.failures = 0
        self.blocked_until = 0.0
