"""The YouTube Data API's daily quota, counted on our side and kept across restarts.

Google resets the quota at midnight Pacific time. We count search.list calls per Pacific day
before making them (a call that times out may still have been charged) and stop at the
configured budget; a 403 quotaExceeded blocks all calls until the next reset.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

from ..util import JsonFile

PACIFIC: tzinfo
try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    PACIFIC = ZoneInfo("America/Los_Angeles")
except (ImportError, ZoneInfoNotFoundError):  # no tz database: PST all year resets an hour late in summer, never early
    PACIFIC = timezone(timedelta(hours=-8), "PST")


def pacific_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, PACIFIC).date().isoformat()


def next_pacific_midnight(epoch: float) -> float:
    today = datetime.fromtimestamp(epoch, PACIFIC).date()
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), PACIFIC)
    return midnight.timestamp()


class DailyBudget:
    def __init__(self, path: Path, budget: int, clock=time.time):
        self._file, self.budget, self._clock = JsonFile(path), budget, clock
        self._state = self._file.load()

    @property
    def calls_today(self) -> int:
        if self._state.get("day") != pacific_day(self._clock()):
            return 0
        return int(self._state.get("calls", 0))

    @property
    def blocked_until(self) -> float | None:
        until = self._state.get("blocked_until")
        return until if until and until > self._clock() else None

    def refusal(self) -> str | None:
        """Why no call may be made now, or None."""
        self._state = self._file.load()  # `moodcast recommend` may have spent some meanwhile
        if self.blocked_until:
            return "YouTube quota exceeded; waiting for the reset at midnight Pacific time"
        if self.calls_today >= self.budget:
            return f"YouTube daily budget of {self.budget} searches used up; next at midnight Pacific time"
        return None

    def spend(self) -> None:
        self._state = self._file.load()
        self._state = {**self._state, "day": pacific_day(self._clock()), "calls": self.calls_today + 1}
        self._file.save(self._state)

    def block_until_reset(self) -> float:
        until = next_pacific_midnight(self._clock())
        self._state = {**self._file.load(), "blocked_until": until}
        self._file.save(self._state)
        return until
