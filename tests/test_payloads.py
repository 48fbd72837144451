"""Builders produce payloads that validate against the shipped JSON Schemas; drift is rejected."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from moodcast.labels import MOODS
from moodcast.mqtt import payloads
from moodcast.mqtt.payloads import TOPICS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "mqtt.md"
SCHEMAS = ("availability", "state", "event", "recommendation", "playback", "stats", "history")
NOW = 1777650245.123456  # 2026-05-01T15:44:05.123Z


def validate(name: str, payload) -> None:
    Draft202012Validator(payloads.load_schema(name)).validate(payload)


def rejects(name: str, payload) -> bool:
    return not Draft202012Validator(payloads.load_schema(name)).is_valid(payload)


def a_state(**overrides):
    args = dict(mood="happy", confidence=0.8123, scores={m: 1 / 7 for m in MOODS}, faces=1,
                since=NOW - 12, paused=False, policy="match", autoplay=False, now=NOW)
    args.update(overrides)
    return payloads.state(**args)


def a_recommendation():
    return payloads.stamp({
        "mood": "sad", "policy": "uplift",
        "music": [{"title": "Sunny Mornings", "artist": "me", "uri": "spotify:playlist:37i9dQZF1DX1BzILRveYHb",
                   "url": "https://open.spotify.com/playlist/37i9dQZF1DX1BzILRveYHb", "source": "configured"}],
        "videos": [{"title": "Happy songs", "channel": "Some Channel", "video_id": "dQw4w9WgXcQ",
                    "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "source": "cache"}],
        "generated_at": payloads.iso(NOW - 3),
    }, NOW)


def a_stats(**overrides):
    fields = dict(fps=4.9, stage_ms={"capture": 3.1, "detect": 11.0, "preprocess": 0.4, "classify": 18.2,
                                     "track": 0.1, "publish": 0.3},
                  cpu_percent=41.5, rss_mb=182.3, uptime_s=3600.2, frames=17640, dropped_frames=12, mqtt_reconnects=1)
    fields.update(overrides)
    return payloads.stats(now=NOW, **fields)


# -- schemas themselves ------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12(name):
    schema = payloads.load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_topic_has_a_schema():
    assert set(TOPICS) == set(SCHEMAS)


def test_unknown_schema_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no payload schema named 'mood'"):
        payloads.load_schema("mood")


def test_topic_qos_and_retain_follow_the_contract():
    assert {n for n, t in TOPICS.items() if t.retain} == {"availability", "state", "recommendation", "playback",
                                                         "history"}
    assert TOPICS["stats"].qos == 0 and all(t.qos == 1 for n, t in TOPICS.items() if n != "stats")


# -- builders ----------------------------------------------------------------------------------

def test_iso_is_utc_with_milliseconds():
    assert payloads.iso(0) == "1970-01-01T00:00:00.000Z"
    assert payloads.iso(NOW) == "2026-05-01T15:44:05.123Z"


def test_stamp_adds_version_and_time_without_touching_the_input():
    original = {"schema": 0, "action": "none", "timestamp": "stale"}
    stamped = payloads.stamp(original, now=NOW)
    assert stamped == {"schema": 1, "action": "none", "timestamp": "2026-05-01T15:44:05.123Z"}
    assert list(stamped)[0] == "schema" and list(stamped)[-1] == "timestamp"
    assert original["schema"] == 0


def test_state_is_valid_and_json_ready_from_numpy_values():
    scores = dict(zip(MOODS, np.array([0.01, 0.0, 0.02, 0.9, 0.03, 0.02, 0.02], np.float32), strict=False))
    state = a_state(confidence=np.float32(0.91234), scores=scores, faces=np.int64(2))
    validate("state", state)
    decoded = json.loads(payloads.encode(state))
    assert decoded["confidence"] == 0.912 and decoded["faces"] == 2 and decoded["scores"]["happy"] == 0.9
    assert decoded["since"] == "2026-05-01T15:43:53.123Z"


@pytest.mark.parametrize("mood", MOODS + ("no_face", "uncertain"))
def test_state_accepts_every_mood(mood):
    validate("state", a_state(mood=mood))


def test_state_without_current_time_uses_the_clock():
    state = payloads.state("neutral", 0.5, {m: 0.0 for m in MOODS}, 0, NOW, True, "off", False)
    validate("state", state)
    assert state["timestamp"] > "2024"


@pytest.mark.parametrize("scores, problem", [
    ({m: 0.1 for m in MOODS[:-1]}, "missing ['neutral']"),
    ({**{m: 0.1 for m in MOODS}, "contempt": 0.0}, "unexpected ['contempt']"),
])
def test_state_refuses_scores_that_are_not_the_seven_moods(scores, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        a_state(scores=scores)


@pytest.mark.parametrize("fields", [
    dict(type="mood_changed", **{"from": "neutral", "to": "happy"}, confidence=0.72, held_for_s=0.9),
    dict(type="face_found", faces=1),
    dict(type="face_lost", faces=0),
    dict(type="error", component="camera", message="read timed out after 5.0 s"),
    dict(type="command", command="policy", ok=True, value="uplift", message="policy set to uplift"),
    dict(type="command", command="autoplay", ok=True, value=False, message=""),
    dict(type="command", command="nonsense", ok=False, value=None, message="unknown command 'nonsense'"),
    dict(type="recommendation_ready", mood="sad", music=3, videos=5),  # types owned by other modules
    dict(type="playback", action="play", ok=False),
])
def test_events_are_valid(fields):
    kind = fields.pop("type")
    event = payloads.event(kind, now=NOW, **fields)
    assert event["type"] == kind and event["schema"] == 1
    validate("event", event)


def test_calibration_events_are_valid_and_rounded():
    offset = dict(zip(MOODS, np.array([-0.2, 0.1, 0.0, -0.5, 0.9, -0.2, -0.1], np.float32), strict=True))
    done = payloads.stamp(payloads.calibration_done(96, offset, 1.0).body(), NOW)
    validate("event", done)
    assert done["offset_size"] == round(float(np.linalg.norm(list(offset.values()))), 3)
    assert done["offset"]["sad"] == 0.9 and done["faces"] == 96
    validate("event", payloads.stamp(payloads.calibration_started(20).body(), NOW))
    for reason in ("no_face", "too_few_faces", "several_faces", "not_relaxed", "paused", "camera", "cancelled"):
        validate("event", payloads.stamp(payloads.calibration_failed(reason, "why", 3).body(), NOW))


def test_stats_and_recommendation_and_playback_are_valid():
    validate("stats", a_stats())
    validate("stats", a_stats(calibration={"stored": False, "strength": 1.0, "running": True}))
    validate("stats", a_stats(calibration={"stored": True, "strength": 0.5, "running": False, "faces": 96,
                                           "offset_size": 0.81, "since": payloads.iso(NOW)}))
    validate("stats", a_stats(recommendations={"cache_hits": 4, "youtube_quota_left": 90}))
    validate("recommendation", a_recommendation())
    validate("recommendation", payloads.stamp({"mood": "neutral", "policy": "off", "music": [], "videos": [],
                                               "generated_at": payloads.iso(NOW)}, NOW))
    validate("playback", payloads.stamp({"action": "play", "ok": False, "device": None, "context_uri": None,
                                         "message": "no active Spotify device"}, NOW))
    validate("availability", "online")
    validate("availability", "offline")


def test_encode_is_compact_utf8_json():
    data = payloads.encode(payloads.event("error", now=NOW, component="camera", message="kamera ist weg – ✗"))
    assert b", " not in data and json.loads(data)["message"].endswith("✗")


# -- drift is caught ---------------------------------------------------------------------------

def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize("drift", [
    lambda s: {**s, "mood": "joy"},
    lambda s: {**s, "confidence": 1.2},
    lambda s: {**s, "confidence": "0.8"},
    lambda s: {**s, "faces": -1},
    lambda s: {**s, "faces": 1.5},
    lambda s: {**s, "paused": "false"},
    lambda s: {**s, "policy": "random"},
    lambda s: {**s, "schema": 2},
    lambda s: {**s, "extra": 1},
    lambda s: {**s, "timestamp": "2026-05-01 15:44:05"},
    lambda s: {**s, "since": "2026-05-01T15:44:05"},  # no time zone
    lambda s: {**s, "scores": _without(s["scores"], "fear")},
    lambda s: {**s, "scores": {**s["scores"], "contempt": 0.1}},
    lambda s: _without(s, "autoplay"),
    lambda s: _without(s, "timestamp"),
])
def test_state_schema_rejects_drift(drift):
    state = a_state()
    assert not rejects("state", state)
    assert rejects("state", drift(state))


@pytest.mark.parametrize("event", [
    {"type": "mood_changed", "from": "neutral", "to": "joy", "confidence": 0.7, "held_for_s": 1},
    {"type": "mood_changed", "from": "neutral", "to": "happy", "confidence": 0.7},
    {"type": "mood_changed", "from": "neutral", "to": "happy", "confidence": 0.7, "held_for_s": 1, "x": 1},
    {"type": "face_found"},
    {"type": "face_lost", "faces": "0"},
    {"type": "error", "message": "no component"},
    {"type": "command", "command": "pause", "ok": "yes", "value": None, "message": ""},
    {"type": "command", "command": "pause", "ok": True, "value": None},
    {"type": "calibration_failed", "reason": "bored", "message": "", "faces": 0},
    {"type": "calibration_done", "faces": 0, "offset_size": 0.1, "offset": {}, "strength": 1},
    {"type": "calibration_done", "faces": 9, "offset_size": 0.1, "offset": {"joy": 0.1}, "strength": 1},
    {"type": "calibration_started"},
    {"type": "Mood Changed"},
])
def test_event_schema_rejects_drift(event):
    assert rejects("event", payloads.stamp(event, NOW))


def test_event_schema_needs_the_common_keys():
    event = payloads.event("recommendation_ready", now=NOW)
    assert not rejects("event", event)
    for key in ("schema", "type", "timestamp"):
        assert rejects("event", _without(event, key))


@pytest.mark.parametrize("drift", [
    lambda r: {**r, "music": [{**r["music"][0], "source": "spotify"}]},
    lambda r: {**r, "music": [_without(r["music"][0], "uri")]},
    lambda r: {**r, "music": [{**r["music"][0], "image": "x"}]},
    lambda r: {**r, "videos": [{**r["videos"][0], "video_id": "not-an-id"}]},
    lambda r: {**r, "videos": [_without(r["videos"][0], "channel")]},
    lambda r: {**r, "policy": "calm"},
    lambda r: _without(r, "generated_at"),
])
def test_recommendation_schema_rejects_drift(drift):
    assert rejects("recommendation", drift(a_recommendation()))


@pytest.mark.parametrize("drift", [
    lambda s: {**s, "fps": -1},
    lambda s: {**s, "frames": 1.5},
    lambda s: {**s, "stage_ms": _without(s["stage_ms"], "classify")},
    lambda s: {**s, "stage_ms": {**s["stage_ms"], "infer": 1.0}},
    lambda s: {**s, "recommendations": "ok"},
    lambda s: {**s, "calibration": {"stored": True, "strength": 2.0, "running": False}},
    lambda s: {**s, "calibration": {"stored": True, "strength": 1.0}},
    lambda s: _without(s, "mqtt_reconnects"),
])
def test_stats_schema_rejects_drift(drift):
    assert rejects("stats", drift(a_stats()))


def a_history():
    from moodcast.service.history import Day

    day = Day("2026-05-01")
    day.count("happy", True, 754.0)
    return payloads.stamp(payloads.History(day.summary()).body(), NOW)


@pytest.mark.parametrize("drift", [
    lambda h: {**h, "date": "01.05.2026"},
    lambda h: {**h, "minutes": _without(h["minutes"], "sad")},
    lambda h: {**h, "minutes": {**h["minutes"], "happy": -1}},
    lambda h: {**h, "longest_minutes": {**h["longest_minutes"], "joy": 1}},
    lambda h: {**h, "mood_changes": 1.5},
    lambda h: {**h, "face_minutes": 2000},
    lambda h: _without(h, "date"),
])
def test_history_and_the_daily_summary_reject_drift(drift):
    history = a_history()
    assert not rejects("history", history) and history["minutes"]["happy"] == 12.5
    assert rejects("history", drift(history))
    fields = {k: v for k, v in history.items() if k not in ("schema", "timestamp")}
    event = payloads.stamp(payloads.daily_summary(fields, complete=True).body(), NOW)
    assert not rejects("event", event)
    assert rejects("event", payloads.stamp(drift(event), NOW))
    assert rejects("event", {**event, "complete": "yes"})


def test_playback_and_availability_schemas_reject_drift():
    ok = payloads.stamp({"action": "pause", "ok": True, "device": "Kitchen", "context_uri": None, "message": ""}, NOW)
    assert not rejects("playback", ok)
    assert rejects("playback", {**ok, "action": "stop"})
    assert rejects("playback", _without(ok, "device"))
    assert rejects("availability", "Online") and rejects("availability", "")


# -- the documented examples are real payloads -------------------------------------------------

def doc_examples() -> list[tuple[str, object]]:
    """```json blocks in docs/mqtt.md preceded by `<!-- example: NAME -->`."""
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- example: (\w+) -->\s*```(?:json|text)\n(.*?)```", text, re.S)
    return [(name, json.loads(body) if name != "availability" else body.strip()) for name, body in blocks]


def test_docs_have_an_example_for_every_topic():
    assert {name for name, _ in doc_examples()} == set(SCHEMAS)


@pytest.mark.parametrize("name, example", doc_examples())
def test_docs_examples_validate(name, example):
    validate(name, example)
