"""Minutes in each mood today, for Home Assistant's long-term statistics, and a summary of each day.

The daemon tells the history what it shows on every turn of its loop (`observe`); the time up to
the next turn is counted for that mood. Only the seven moods count: no face, uncertain and the
privacy pause (which shows no_face) count in none of them. The counts reset at local midnight,
when the day's summary is due; they are saved in the state directory every minute and on a clean
stop, so a restart within the day carries on from them (a crash loses at most a minute). A day whose
midnight the daemon did not see (it was stopped) gets its summary at the next start, from what was
saved: the minutes it counted that day.

The clock is a `now` callable returning an aware local datetime, so midnight and restarts can be
replayed exactly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from moodcast.labels import MOODS
from moodcast.mqtt.payloads import Event, History, daily_summary
from moodcast.util import JsonFile

log = logging.getLogger("moodcast")
FILE_NAME = "history.json"
MAX_BYTES = 8192
PUBLISH_EVERY_S = 60.0
# A longer gap between two turns of the loop (a suspended machine, a stalled process) is not counted:
# nobody knows what was in view meanwhile. Turns come at least once a second, paused or not.
MAX_STEP_S = 10.0


def local_now() -> datetime:
    return datetime.now().astimezone()


@dataclass
class Day:
    """One local day's counts, in seconds (published in minutes)."""

    date: str  # YYYY-MM-DD, local
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MOODS, 0.0))
    longest: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MOODS, 0.0))
    changes: int = 0  # from one of the seven moods to another (a gap without one in between does not count)
    face_seconds: float = 0.0
    stretch_mood: str | None = None  # the mood held without a break up to now, and for how long
    stretch: float = 0.0
    last_mood: str | None = None

    def count(self, mood: str, face: bool, dt: float) -> None:
        if face:
            self.face_seconds += dt
        if mood not in MOODS:
            self.stretch_mood, self.stretch = None, 0.0
            return
        self.seconds[mood] += dt
        self.stretch = self.stretch + dt if mood == self.stretch_mood else dt
        self.stretch_mood = mood
        self.longest[mood] = max(self.longest[mood], self.stretch)

    def seen(self, mood: str) -> None:
        """The mood shown now: a change when it is another of the seven than the last one today."""
        if mood in MOODS:
            self.changes += self.last_mood is not None and mood != self.last_mood
            self.last_mood = mood

    def summary(self) -> dict[str, Any]:
        return {"date": self.date, "minutes": _minutes(self.seconds), "longest_minutes": _minutes(self.longest),
                "mood_changes": self.changes, "face_minutes": round(self.face_seconds / 60, 1)}


def _minutes(seconds: dict[str, float]) -> dict[str, float]:
    # rounded down (past float noise: 120 turns of 0.2 s are 24 s), so a published value is never
    # more than was counted, and a total_increasing sensor never steps back
    return {mood: math.floor(seconds[mood] / 6 + 1e-6) / 10 for mood in MOODS}


class MoodHistory:
    def __init__(self, state_dir: Path, now: Callable[[], datetime] = local_now):
        self.path = Path(state_dir) / FILE_NAME
        self.now = now
        self.day, self._missed = self._restore(now().date())
        self._last: tuple[datetime, str, bool] | None = None  # the previous turn: when, mood, face
        self._published: datetime | None = None
        self._save_failed = False

    def observe(self, mood: str, face: bool) -> list[History | Event]:
        """One turn of the daemon's loop, showing `mood` (and a face or not). Returns what is due: the
        day's summary when midnight passed, and the minutes once a minute (saved at the same time)."""
        now = self.now()
        after = 0.0  # seconds since the previous turn that fall after midnight
        if self._last:
            then, was, had_face = self._last
            step = min(max((now - then).total_seconds(), 0.0), MAX_STEP_S)
            midnight = datetime.combine(then.date() + timedelta(days=1), time(), then.tzinfo)
            before = min(step, (midnight - then).total_seconds())
            self.day.count(was, had_face, before)
            after = step - before
        out: list[History | Event] = []
        if self._missed:  # the first turn after a start that found an earlier day saved
            out.append(self._summarise(self._missed, "the daemon was not running at its midnight; "))
            self._missed = None
        if now.date().isoformat() != self.day.date:
            out.append(self._new_day(now.date()))
        if after:
            self.day.count(was, had_face, after)
        self._last = (now, mood, face)
        self.day.seen(mood)
        if self._published is None or out or (now - self._published).total_seconds() >= PUBLISH_EVERY_S:
            out.append(self.publish(now))
        return out

    def _new_day(self, today: date) -> Event:
        """Midnight: the day that ended, summarised; the counts start again."""
        ended, self.day = self.day, Day(today.isoformat())
        return self._summarise(ended)

    @staticmethod
    def _summarise(ended: Day, why: str = "") -> Event:
        log.info("%smood minutes of %s: %s; %d changes, a face in view %.0f min", why, ended.date,
                 ", ".join(f"{m} {v:g}" for m, v in _minutes(ended.seconds).items() if v) or "none",
                 ended.changes, ended.face_seconds / 60)
        return daily_summary(ended.summary(), complete=True)

    def publish(self, now: datetime | None = None) -> History:
        """The retained minutes (and a save): once a minute, and whenever asked."""
        self._published = now or self.now()
        self.save()
        return History(self.day.summary())

    def snapshot(self) -> Event:
        """Today so far (set/snapshot_stats)."""
        return daily_summary(self.day.summary(), complete=False)

    def save(self) -> None:
        """Never raises: the counts are a convenience, not worth stopping the daemon for (said once)."""
        try:
            JsonFile(self.path).save(asdict(self.day))
            self._save_failed = False
        except OSError as e:
            if not self._save_failed:
                log.error("cannot save the mood history to %s (%s): a restart today starts the minutes at 0",
                          self.path, e.strerror or e)
            self._save_failed = True

    def _restore(self, today: date) -> tuple[Day, Day | None]:
        """Today's counts so far; and an earlier day saved whose summary was never sent (or None)."""
        try:
            day = _parse(JsonFile(self.path).read(MAX_BYTES))  # a FIFO put there must not hang the start
        except FileNotFoundError:
            return Day(today.isoformat()), None
        except (OSError, ValueError, TypeError) as e:
            log.warning("%s: unreadable mood history (%s); today's minutes start at 0", self.path, e)
            return Day(today.isoformat()), None
        if day.date != today.isoformat():
            # the file is rewritten for the new day on the first turn after a midnight, so an earlier
            # date means that midnight passed while the daemon was stopped; a later one, a clock set back
            earlier = date.fromisoformat(day.date) < today
            log.info("%s holds %s, not today: today's minutes start at 0%s", self.path, day.date,
                     "; its summary goes out now" if earlier else "")
            return Day(today.isoformat()), day if earlier else None
        # the time the daemon was down is not counted, so a stretch cannot run through it
        day.stretch_mood, day.stretch = None, 0.0
        log.info("restored today's mood minutes from %s", self.path)
        return day, None


def _parse(data: object) -> Day:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    day = Day(**data)  # TypeError for unknown or missing keys
    date.fromisoformat(day.date)
    for table in (day.seconds, day.longest):
        if set(table) != set(MOODS) or not all(isinstance(v, (int, float)) and 0 <= v < 86400 for v in table.values()):
            raise ValueError("expected seconds per mood")
    if not isinstance(day.changes, int) or not isinstance(day.face_seconds, (int, float)):
        raise ValueError("expected changes and face_seconds")
    return day
