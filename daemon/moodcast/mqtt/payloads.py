"""The MQTT payload contract: each topic's QoS/retain, and builders for every JSON payload.

Builders are pure: they add `schema` (the contract version) and `timestamp`, convert numpy
scalars to plain numbers (json.dumps rejects float32) and round floats so payloads stay small.
The JSON Schemas in `schemas/` are the reference; tests validate every builder against them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any, ClassVar, NamedTuple

from moodcast.labels import MOODS

SCHEMA_VERSION = 1

ONLINE, OFFLINE = "online", "offline"


class Topic(NamedTuple):
    qos: int
    retain: bool


# The kinds under <prefix>/<device_id> (moodcast.topics builds the topics). Retained topics hold "the
# current value" so a dashboard that connects later sees it at once; events and stats are moments,
# so replaying them would lie.
TOPICS: dict[str, Topic] = {
    "availability": Topic(1, True),
    "state": Topic(1, True),
    "event": Topic(1, False),
    "recommendation": Topic(1, True),
    "playback": Topic(1, True),
    "stats": Topic(0, False),
    "history": Topic(1, True),
}


def iso(ts: float) -> str:
    """Epoch seconds -> '2026-05-01T18:04:05.123Z' (UTC, milliseconds)."""
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stamp(payload: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """A copy of `payload` with `schema` first and `timestamp` last (for payloads built elsewhere)."""
    body = {k: v for k, v in payload.items() if k not in ("schema", "timestamp")}
    return {"schema": SCHEMA_VERSION, **body, "timestamp": iso(time.time() if now is None else now)}


# -- the messages: one small class per kind, each built in one place. body() is the payload without
# `schema` and `timestamp`; the daemon's Publisher stamps it once (Publisher.publish -> stamp).

class Message:
    """Something published on `<base>/<kind>`."""

    kind: ClassVar[str]

    def body(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class State(Message):
    """The retained `<base>/state` payload. `since` (epoch seconds) is when `mood` became current."""

    kind: ClassVar[str] = "state"
    mood: str
    confidence: float
    scores: Mapping[str, float]
    faces: int
    since: float
    paused: bool
    policy: str
    autoplay: bool
    room: Mapping[str, Any] | None = None  # with [detector] faces = "all": service.room.RoomState.body()

    def body(self) -> dict[str, Any]:
        body = {
            "mood": self.mood,
            "confidence": round(float(self.confidence), 3),
            "scores": _scores(self.scores),
            "faces": int(self.faces),
            "since": iso(self.since),
            "paused": bool(self.paused),
            "policy": str(self.policy),
            "autoplay": bool(self.autoplay),
        }
        if self.room is not None:
            body["room"] = dict(self.room)
        return body


@dataclass(frozen=True)
class Stats(Message):
    """`<base>/stats`; the fields are listed in schemas/stats.schema.json."""

    kind: ClassVar[str] = "stats"
    fields: Mapping[str, Any]

    def body(self) -> dict[str, Any]:
        return dict(self.fields)


@dataclass(frozen=True)
class History(Message):
    """The retained `<base>/history`: today's minutes per mood (schemas/history.schema.json)."""

    kind: ClassVar[str] = "history"
    summary: Mapping[str, Any]

    def body(self) -> dict[str, Any]:
        return dict(self.summary)


@dataclass(frozen=True)
class Event(Message):
    """`<base>/event`: `type` plus the fields of its kind (schemas/event.schema.json)."""

    kind: ClassVar[str] = "event"
    type: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"type": self.type, **self.fields}


def mood_changed(previous: str, mood: str, confidence: float, held_for_s: float) -> Event:
    return Event("mood_changed", {"from": previous, "to": mood, "confidence": round(confidence, 3),
                                  "held_for_s": round(held_for_s, 2)})


def faces_event(faces: int) -> Event:
    """face_found when a face appears, face_lost (faces 0) when the last one goes."""
    return Event("face_found" if faces else "face_lost", {"faces": faces})


def error_event(component: str, message: str) -> Event:
    return Event("error", {"component": component, "message": message})


def command_event(command: str, ok: bool, value: bool | str | None, message: str) -> Event:
    return Event("command", {"command": command, "ok": ok, "value": value, "message": message})


def daily_summary(summary: Mapping[str, Any], complete: bool) -> Event:
    """A day's minutes per mood, longest stretches, changes and face minutes; `complete` at midnight,
    false for today so far (set/snapshot_stats)."""
    return Event("daily_summary", {**summary, "complete": complete})


def calibration_started(duration_s: float) -> Event:
    return Event("calibration_started", {"duration_s": round(float(duration_s), 1)})


def calibration_done(faces: int, offset: Mapping[str, float], strength: float) -> Event:
    """`offset` over the model's labels (centred, in log-probability units); `offset_size` its length."""
    size = sum(float(v) ** 2 for v in offset.values()) ** 0.5
    return Event("calibration_done", {"faces": int(faces), "offset_size": round(size, 3),
                                      "offset": {k: round(float(v), 3) for k, v in offset.items()},
                                      "strength": round(float(strength), 3)})


def calibration_failed(reason: str, message: str, faces: int) -> Event:
    return Event("calibration_failed", {"reason": str(reason), "message": message, "faces": int(faces)})


# -- builders with the stamp, for tools and tests that want a finished payload

def state(mood: str, confidence: float, scores: Mapping[str, float], faces: int, since: float,
          paused: bool, policy: str, autoplay: bool, now: float | None = None) -> dict[str, Any]:
    """The retained `<base>/state` payload, stamped."""
    return stamp(State(mood, confidence, scores, faces, since, paused, policy, autoplay).body(), now)


def event(type: str, /, now: float | None = None, **fields: Any) -> dict[str, Any]:
    """A `<base>/event` payload, stamped, e.g. event("face_lost", faces=0)."""
    return stamp(Event(type, fields).body(), now)


def stats(now: float | None = None, **fields: Any) -> dict[str, Any]:
    """A `<base>/stats` payload, stamped."""
    return stamp(Stats(fields).body(), now)


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as published."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema for a topic, e.g. load_schema("state"), shipped as package data."""
    ref = resources.files("moodcast") / "schemas" / f"{name}.schema.json"
    try:
        return json.loads(ref.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no payload schema named {name!r} (known: {', '.join(TOPICS)})") from None


def _scores(scores: Mapping[str, float]) -> dict[str, float]:
    # Exactly the seven moods: a model card with other labels must be mapped before publishing.
    missing = [m for m in MOODS if m not in scores]
    extra = [k for k in scores if k not in MOODS]
    if missing or extra:
        raise ValueError(f"scores must have exactly the moods {MOODS}; missing {missing}, unexpected {extra}")
    return {m: round(float(scores[m]), 4) for m in MOODS}
