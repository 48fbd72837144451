"""Commands arriving on `<base>/set/<name>`: parse and validate, never act.

Every invalid message raises CommandError with a message meant for the `command` result event;
the caller publishes `{ok: false, message}` and changes nothing. Payloads are plain text
(`uplift`, `on`); a JSON object `{"value": ...}` or a JSON string is accepted too, because
Node-RED and HA scripts often send JSON.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass

from moodcast.labels import POLICIES, Policy
from moodcast.util import TextEnum

MAX_PAYLOAD = 256  # bytes; every valid payload is a few bytes, so anything bigger is a mistake
MAX_NAME = 64  # characters of a command name kept; the longest real one has 17

# pause/resume ignore their payload; `paused` takes ON/OFF so a Home Assistant switch (one
# command topic) can drive the privacy pause. The actions (snapshot_stats, calibrate,
# reset_calibration) ignore theirs: a Home Assistant button sends PRESS.
ACTIONS = ("snapshot_stats", "calibrate", "reset_calibration")
COMMANDS = ("pause", "resume", "paused", "policy", "autoplay", *ACTIONS)

_TRUE = ("on", "true", "1")
_FALSE = ("off", "false", "0")


class Setting(TextEnum):
    """The run-time settings commands change (state fields and settings.json keys), in the order a
    batch of commands applies them: the privacy pause first."""

    PAUSED = "paused"
    POLICY = "policy"
    AUTOPLAY = "autoplay"


_SETTINGS = {"pause": Setting.PAUSED, "resume": Setting.PAUSED, "paused": Setting.PAUSED, "policy": Setting.POLICY,
             "autoplay": Setting.AUTOPLAY}


class CommandError(ValueError):
    """An invalid command; str(e) is the message for the result event."""

    def __init__(self, message: str, command: str = ""):
        super().__init__(message)
        self.message = message
        self.command = command


@dataclass(frozen=True)
class Incoming:
    """A message on <base>/set/..., cut down on arrival (in paho's thread) to what validation needs:
    a flood of 100 MB payloads or a 60,000-character topic level must not be queued or echoed."""
    name: str
    payload: bytes
    size: int  # of the payload as it arrived

    @classmethod
    def cut(cls, name: str, payload: bytes) -> Incoming:
        return cls(name[:MAX_NAME + 1], payload[:MAX_PAYLOAD + 1], len(payload))


@dataclass(frozen=True)
class Command:
    """A valid command. `value` is the new setting as published in the result event: a bool for
    paused/autoplay, a Policy for policy, None for the actions; `switch` and `policy` read it typed."""

    name: str
    value: bool | Policy | None

    @property
    def setting(self) -> Setting | None:
        """The state field this command changes, or None (an action)."""
        return _SETTINGS.get(self.name)

    @property
    def switch(self) -> bool:
        """The new on/off value of paused or autoplay."""
        if not isinstance(self.value, bool):
            raise TypeError(f"{self.name} is not an on/off command")
        return self.value

    @property
    def policy(self) -> Policy:
        if not isinstance(self.value, Policy):
            raise TypeError(f"{self.name} does not set the policy")
        return self.value


@dataclass(frozen=True)
class Rejected:
    """An invalid command, kept for its result event. Not the CommandError itself: its traceback would
    keep paho's frames alive, and with them the whole payload as it arrived (30 MB, say) until reported."""

    command: str  # the name, shortened if it was junk
    message: str


Result = Command | Rejected  # what one message on <base>/set/... came to


@dataclass(frozen=True)
class Batch:
    """What arrived since the frame loop last looked.

    `settings`: the newest valid command of each setting, the privacy pause first: the one to apply.
    `results`: every message in order of arrival (at most CommandInbox.maxsize, the newest), for the
    `command` events; a settings command there that is not in `settings` was superseded by a newer one."""

    settings: list[Command]
    results: list[Result]

    def superseded(self, command: Command) -> bool:
        return command.setting is not None and not any(command is newest for newest in self.settings)


class CommandInbox:
    """Commands from paho's thread to the frame loop, which applies them between frames; put() never blocks.

    The last word always wins: each message is validated on arrival and the newest valid value of
    each setting (pause, policy, autoplay) is kept apart, so no flood can push it out. Only the
    results waiting to be reported are bounded: beyond `maxsize` the oldest are dropped and counted."""

    def __init__(self, maxsize: int = 64):
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._latest: dict[Setting, Command] = {}
        self._results: deque[Result] = deque()
        self._dropped = 0
        self._reported = 0

    def put(self, message: Incoming) -> None:
        """paho's thread. Parsing is cheap: the payload was cut to MAX_PAYLOAD + 1 bytes on arrival."""
        try:
            result: Result = parse_command(message.name, message.payload, message.size)
        except CommandError as e:
            result = Rejected(e.command, e.message)
        with self._lock:
            if isinstance(result, Command) and result.setting is not None:
                self._latest[result.setting] = result
            if len(self._results) >= self.maxsize:
                self._results.popleft()
                self._dropped += 1
            self._results.append(result)

    def newly_dropped(self) -> int:
        """How many results were dropped since the last call."""
        with self._lock:
            dropped, self._reported = self._dropped - self._reported, self._dropped
        return dropped

    def take(self) -> Batch:
        """Everything waiting; the inbox is empty afterwards."""
        with self._lock:
            latest, self._latest = self._latest, {}
            results, self._results = list(self._results), deque()
        return Batch([latest[s] for s in Setting if s in latest], results)  # Setting lists PAUSED first


def parse_command(name: str, payload: bytes, size: int | None = None) -> Command:
    """Validate one command message; raise CommandError for anything that must not be applied.
    `size` is the payload's length as it arrived, when `payload` was cut (Incoming.cut)."""
    if name not in COMMANDS:
        raise CommandError(f"unknown command {_quote(name)} (known: {', '.join(COMMANDS)})", _short(name))
    size = len(payload) if size is None else size
    if size > MAX_PAYLOAD:  # by its length first: an oversized payload is never decoded
        raise CommandError(f"{name}: payload of {size} bytes is over the {MAX_PAYLOAD}-byte limit", name)
    text = _decode(name, payload)
    if name == "pause":
        return Command(name, True)
    if name == "resume":
        return Command(name, False)
    if name in ACTIONS:
        return Command(name, None)
    value = _unwrap(name, text)
    if name == "policy":
        return Command(name, _policy(value))
    return Command(name, _switch(name, value))  # paused, autoplay


def _decode(name: str, payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError(f"{name}: payload is not UTF-8 text", name) from None


def _unwrap(name: str, text: str) -> object:
    """Plain text as is; `{"value": x}` or `"x"` (JSON) -> x."""
    if not text.startswith(("{", '"')):
        return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CommandError(f"{name}: payload looks like JSON but is not valid JSON ({e.msg})", name) from None
    if isinstance(data, dict):
        if set(data) != {"value"}:
            raise CommandError(f'{name}: a JSON payload must be {{"value": ...}}', name)
        return data["value"]
    return data


def _policy(value: object) -> Policy:
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in POLICIES:
        raise CommandError(f"policy: expected one of {', '.join(POLICIES)}, got {_quote(value)}", "policy")
    return Policy(text)


def _switch(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CommandError(f"{name}: expected on/off (or true/false, 1/0), got {_quote(value)}", name)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(value: object, limit: int = 40) -> str:
    """A short repr for error messages, so a junk payload cannot bloat the result event."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
