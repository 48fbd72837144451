"""Minutes per mood today: counted from the daemon's own loop turns on a clock the test moves, across a
local midnight and a restart, with the real state file; every payload against its schema."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from jsonschema import Draft202012Validator

from bench.mosquitto import Subscriber, publish
from moodcast.labels import MOODS
from moodcast.mqtt import payloads
from moodcast.mqtt.payloads import History
from moodcast.service.history import FILE_NAME, MAX_STEP_S, PUBLISH_EVERY_S, MoodHistory
from tests.daemon_process import STARTUP, write_config
from tests.media import SAMPLES

BERLIN_SUMMER = timezone(timedelta(hours=2))
HISTORY = Draft202012Validator(payloads.load_schema("history"))
EVENT = Draft202012Validator(payloads.load_schema("event"))


class Clock:
    """Local wall time that moves only when told to."""

    def __init__(self, start: datetime):
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def run(history: MoodHistory, clock: Clock, mood: str, seconds: float, face: bool = True, step: float = 0.2):
    """The daemon's loop showing `mood` for `seconds`, a turn every `step` (5 fps), up to and including the
    turn at the end; what it published."""
    out = []
    for _ in range(round(seconds / step)):
        out += history.observe(mood, face)
        clock.advance(step)
    return out + history.observe(mood, face)


def stamped(messages) -> list[dict]:
    bodies = [payloads.stamp(m.body(), 1777650245.0) for m in messages]
    for m, body in zip(messages, bodies, strict=True):
        (HISTORY if isinstance(m, History) else EVENT).validate(body)
    return bodies


def test_minutes_per_mood_count_only_the_seven_moods(tmp_path):
    clock = Clock(datetime(2026, 5, 1, 18, 0, tzinfo=BERLIN_SUMMER))
    history = MoodHistory(tmp_path, clock)
    run(history, clock, "happy", 90)
    run(history, clock, "no_face", 60, face=False)
    run(history, clock, "uncertain", 30)
    run(history, clock, "happy", 30)
    run(history, clock, "sad", 24)
    run(history, clock, "no_face", 600, face=False)  # the privacy pause shows no_face too
    summary = history.day.summary()
    assert summary["minutes"] == {**dict.fromkeys(MOODS, 0.0), "happy": 2.0, "sad": 0.4}
    assert summary["longest_minutes"]["happy"] == 1.5  # the 90 s stretch; the gap ended it
    assert summary["mood_changes"] == 1  # happy -> (no face, uncertain) -> happy is no change; -> sad is one
    assert summary["face_minutes"] == 2.9  # happy, uncertain, happy and sad: 174 s
    assert summary["date"] == "2026-05-01"


def test_publishes_every_minute_and_a_gap_is_not_counted(tmp_path):
    clock = Clock(datetime(2026, 5, 1, 18, 0, tzinfo=BERLIN_SUMMER))
    history = MoodHistory(tmp_path, clock)
    published = [m for m in run(history, clock, "neutral", 185) if isinstance(m, History)]
    assert len(published) == 1 + int(185 // PUBLISH_EVERY_S)  # at the first turn, then once a minute
    assert [b["minutes"]["neutral"] for b in stamped(published)] == [0.0, 1.0, 2.0, 3.0]
    history.observe("neutral", True)
    clock.advance(3600)  # a suspended machine: nobody knows what was in view
    history.observe("neutral", True)
    assert history.day.seconds["neutral"] == pytest.approx(185 + MAX_STEP_S)


def test_midnight_summarises_the_day_and_a_restart_carries_on_within_the_day(tmp_path):
    clock = Clock(datetime(2026, 5, 1, 23, 58, 30, tzinfo=BERLIN_SUMMER))
    history = MoodHistory(tmp_path, clock)
    before = run(history, clock, "sad", 60)
    assert not [m for m in before if m.kind == "event"]
    across = run(history, clock, "sad", 60)  # 23:59:30 to 00:00:30: a stretch through midnight
    bodies = stamped(across)
    summaries = [i for i, b in enumerate(bodies) if b.get("type") == "daily_summary"]
    assert len(summaries) == 1
    ended, reset = bodies[summaries[0]], bodies[summaries[0] + 1]
    assert (ended["date"], ended["complete"], ended["minutes"]["sad"]) == ("2026-05-01", True, 1.5)
    assert reset["date"] == "2026-05-02" and reset["minutes"]["sad"] == 0.0  # the sensors drop to 0 at once
    assert history.day.summary()["minutes"]["sad"] == 0.5 and history.day.longest["sad"] == pytest.approx(30)

    run(history, clock, "happy", 120)
    history.save()  # the daemon's clean stop
    saved = json.loads((tmp_path / FILE_NAME).read_text())
    assert saved["date"] == "2026-05-02" and (tmp_path / FILE_NAME).stat().st_mode & 0o777 == 0o600

    clock.advance(300)  # five minutes down: not counted
    again = MoodHistory(tmp_path, clock)
    first = stamped(again.observe("happy", True))
    assert first[0]["minutes"]["happy"] == 2.0 and first[0]["minutes"]["sad"] == 0.5
    run(again, clock, "happy", 60)
    assert again.day.summary()["minutes"]["happy"] == 3.0
    assert again.day.longest["happy"] == pytest.approx(120)  # a stretch does not run through a restart

    again.save()
    clock.advance(86400)  # the next start is on another day: yesterday's counts are not today's...
    later = MoodHistory(tmp_path, clock)
    assert later.day.summary()["minutes"]["happy"] == 0.0
    first = stamped(later.observe("happy", True))  # ...but its midnight was missed: its summary goes out now
    assert [b.get("type") for b in first] == ["daily_summary", None]
    assert (first[0]["date"], first[0]["complete"], first[0]["minutes"]["happy"]) == ("2026-05-02", True, 3.0)
    assert first[1]["date"] == "2026-05-03" and first[1]["minutes"]["happy"] == 0.0
    assert not [m for m in run(later, clock, "happy", 120) if m.kind == "event"]  # once
    later.save()
    assert not [m for m in MoodHistory(tmp_path, clock).observe("happy", True) if m.kind == "event"]


def test_a_day_saved_after_today_is_a_clock_set_back_and_gets_no_summary(tmp_path):
    clock = Clock(datetime(2026, 5, 2, 9, 0, tzinfo=BERLIN_SUMMER))
    history = MoodHistory(tmp_path, clock)
    run(history, clock, "happy", 60)
    history.save()
    clock.advance(-86400)
    again = MoodHistory(tmp_path, clock)
    assert not [m for m in again.observe("happy", True) if m.kind == "event"]
    assert again.day.date == "2026-05-01"


def test_a_snapshot_is_today_so_far(tmp_path):
    clock = Clock(datetime(2026, 5, 1, 9, 0, tzinfo=BERLIN_SUMMER))
    history = MoodHistory(tmp_path, clock)
    run(history, clock, "surprise", 12)
    snapshot = stamped([history.snapshot()])[0]
    assert snapshot["type"] == "daily_summary" and snapshot["complete"] is False
    assert snapshot["minutes"]["surprise"] == 0.2


@pytest.mark.parametrize("content", [b"{", b"[1]", b'{"date": "May"}', b'{"date": "2026-05-01", "bogus": 1}',
                                     b'{"date": "2026-05-01", "seconds": {"happy": -5}}', b"x" * 9000])
def test_an_unreadable_history_starts_the_day_at_zero(tmp_path, caplog, content):
    (tmp_path / FILE_NAME).write_bytes(content)
    clock = Clock(datetime(2026, 5, 1, 9, 0, tzinfo=BERLIN_SUMMER))
    with caplog.at_level(logging.WARNING):
        history = MoodHistory(tmp_path, clock)
    assert "unreadable mood history" in caplog.text
    assert history.day.summary()["minutes"] == dict.fromkeys(MOODS, 0.0)


def test_an_unwritable_state_directory_is_said_once_and_counting_goes_on(tmp_path, caplog):
    (tmp_path / "state").write_text("a file where the state directory should be")
    clock = Clock(datetime(2026, 5, 1, 9, 0, tzinfo=BERLIN_SUMMER))
    history = MoodHistory(tmp_path / "state", clock)
    with caplog.at_level(logging.ERROR):
        run(history, clock, "happy", 130)
    assert caplog.text.count("cannot save the mood history") == 1
    assert history.day.summary()["minutes"]["happy"] == 2.1


def test_the_daemon_publishes_the_minutes_and_the_summary_on_snapshot_stats(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera={
        "source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True})
    base = "moodcast/testcam"
    with Subscriber(mosquitto, [f"{base}/#"]) as sub, daemon_process(config):
        first = sub.wait_for(f"{base}/history", timeout=STARTUP).json()
        HISTORY.validate(first)
        sub.wait_for(f"{base}/state", lambda m: m.json()["mood"] == "happy", timeout=60)
        publish(mosquitto, f"{base}/set/snapshot_stats", "")
        summary = sub.wait_for(f"{base}/event", lambda m: m.json()["type"] == "daily_summary", timeout=15).json()
        EVENT.validate(summary)
        assert summary["complete"] is False and summary["date"] == first["date"]
        latest = sub.messages[f"{base}/history"][-1].json()
        assert latest["face_minutes"] >= first["face_minutes"]
    assert (tmp_path / "state" / FILE_NAME).exists()


def test_a_fifo_in_place_of_the_history_is_refused_without_waiting_for_a_writer(tmp_path, caplog):
    import os
    import signal

    from moodcast.service.calibration import FILE_NAME as CALIBRATION
    from moodcast.service.calibration import CalibrationFile

    os.mkfifo(tmp_path / FILE_NAME)
    os.mkfifo(tmp_path / CALIBRATION)
    clock = Clock(datetime(2026, 5, 1, 9, 0, tzinfo=BERLIN_SUMMER))
    signal.alarm(10)  # opening a FIFO for reading waits for a writer: fail instead of hanging the suite
    try:
        with caplog.at_level(logging.WARNING):
            history = MoodHistory(tmp_path, clock)
        with pytest.raises(OSError, match="not a regular file"):
            CalibrationFile(tmp_path).read()
    finally:
        signal.alarm(0)
    assert "not a regular file (a FIFO)" in caplog.text
    assert history.day.summary()["minutes"] == dict.fromkeys(MOODS, 0.0)
