"""Every MQTT topic moodcast publishes on or subscribes to, built in one place, and the one rule for
the two configured parts they start with.

`[mqtt] prefix` starts moodcast's own topics, `<prefix>/<device_id>/<kind>` (state, event, ...,
and commands under `set/`); `[mqtt] discovery_prefix` starts Home Assistant's
(`<discovery_prefix>/<component>/moodcast_<device_id>/<key>/config` and `<discovery_prefix>/status`).
`prefix_problem` is checked once, when the configuration is loaded, so a prefix that would make
a bad topic stops `check-config` and `run` alike with one line and exit 78; after that the
prefixes are used as written, never trimmed or checked again. A configured device id must be
topic-safe as written (device_id_problem, also at load); the host name, used when it is empty, is
made so by sanitise_id (Config.device_id). This module imports nothing of moodcast's: config uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMAND_LEVEL = "set"  # commands arrive on <base>/set/<name>
MAX_PREFIX_BYTES = 128  # no broker needs more; a longer one is a mistake


def prefix_problem(value: str) -> str | None:
    """Why `value` cannot start a topic moodcast publishes on, or None. Brokers refuse wildcards
    and NUL in a published (or last-will) topic; an empty level, leading or trailing, is legal
    MQTT but makes topics nothing else subscribes to (Home Assistant listens on "homeassistant/...",
    not "homeassistant//...")."""
    if not value:
        return 'expected a topic prefix such as "moodcast", not empty'
    if len(value.encode("utf-8", "replace")) > MAX_PREFIX_BYTES or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"expected a topic prefix of at most {MAX_PREFIX_BYTES} bytes on one line, without control characters"
    if "+" in value or "#" in value:
        return "expected a topic prefix without the wildcards + and #"
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return 'expected a topic prefix without a leading, trailing or doubled "/" (e.g. "home/moods")'
    return None


def sanitise_id(text: str) -> str:
    """A topic level and Home Assistant id: [a-zA-Z0-9_-] only, never empty (for the host name)."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in text.strip())
    return cleaned.strip("_") or "moodcast"


def device_id_problem(value: str) -> str | None:
    """Why a configured `[mqtt] device_id` cannot be used, or None. sanitise_id would turn `a/b`, `a+b`,
    `a#b` and `a b` alike into `a_b`, and ids of only `+`, `#`, `/` or `é` into `moodcast`: two devices
    would share one set of topics and one Home Assistant device without a word. So a configured id
    must already be what sanitise_id makes of it; only the host name (an empty id) is cut down."""
    if not value or sanitise_id(value) == value:
        return None
    return (f'expected only letters, digits, "_" and "-", no "_" at either end (it becomes a topic level and a '
            f'Home Assistant id; cut down to "{sanitise_id(value)}" it could be another device\'s)')


@dataclass(frozen=True)
class Topics:
    """The topics of one device (Config.topics): the prefixes have passed prefix_problem, the device
    id sanitise_id."""

    prefix: str
    device_id: str
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        """`<prefix>/<device_id>`: every contract topic is under it."""
        return f"{self.prefix}/{self.device_id}"

    def of(self, kind: str) -> str:
        """A contract topic, e.g. of("state") -> "moodcast/livingroom/state" (kinds: payloads.TOPICS)."""
        return f"{self.base}/{kind}"

    @property
    def commands(self) -> str:
        """The subscription for commands; set/a/b too, so that it gets a "no such command" answer."""
        return f"{self.base}/{COMMAND_LEVEL}/#"

    def command_name(self, topic: str) -> str | None:
        """The command a topic carries (everything after `<base>/set/`), or None for another topic."""
        head = f"{self.base}/{COMMAND_LEVEL}/"
        return topic[len(head):] if topic.startswith(head) else None

    @property
    def this_device(self) -> str:
        """The subscription for everything this device publishes."""
        return f"{self.base}/#"

    @property
    def every_device(self) -> str:
        """The subscription for every moodcast device under the prefix."""
        return f"{self.prefix}/+/#"

    def discovery(self, component: str, key: str) -> str:
        """Where Home Assistant reads one entity's config (retained; empty removes the entity)."""
        return f"{self.discovery_prefix}/{component}/moodcast_{self.device_id}/{key}/config"

    @property
    def discovery_configs(self) -> str:
        """The subscription for every discovery config of this device."""
        return self.discovery("+", "+")

    @property
    def ha_status(self) -> str:
        """Where Home Assistant announces `online`/`offline` (its birth message and last will)."""
        return f"{self.discovery_prefix}/status"
