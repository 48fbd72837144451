"""Home Assistant MQTT discovery for one moodcast device.

Each entity is a retained JSON config on
`<discovery_prefix>/<component>/moodcast_<device_id>/<key>/config` (Topics.discovery); an empty
retained payload on the same topic removes the entity. Entities read the contract topics (`state`, `recommendation`,
`stats`, `history`) through value templates and send commands to `<base>/set/<name>`, so nothing here
adds topics of its own.

Home Assistant publishes `online` on `<discovery_prefix>/status` when it (re)starts and then
forgets entities whose config it has not seen: on that message (Topics.ha_status) the link
re-publishes `discovery_messages(...)` and the current state (see `is_ha_online`).
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

from moodcast.labels import MOODS, POLICIES, STATES
from moodcast.mqtt.payloads import OFFLINE, ONLINE
from moodcast.topics import COMMAND_LEVEL, Topics

MANUFACTURER = "moodcast"
MODEL = "Facial emotion to MQTT daemon"
ON, OFF = "ON", "OFF"  # switch payloads; commands.parse_command accepts them case-insensitively


class Entity(NamedTuple):
    component: str  # sensor, binary_sensor, switch, select, button
    key: str        # stable: part of unique_id and entity_id, never rename
    config: dict[str, Any]  # topics are contract suffixes, made absolute in discovery_messages


def _on_off(field: str) -> str:
    return f"{{{{ '{ON}' if value_json.{field} else '{OFF}' }}}}"


def _first(field: str) -> str:
    # HA rejects states over 255 characters; an empty list reads as "none", not unknown.
    return f"{{{{ (value_json.{field}[0].title if value_json.{field} else 'none')[:255] }}}}"


def _first_attrs(field: str) -> str:
    return f"{{{{ (value_json.{field}[0] if value_json.{field} else {{}}) | tojson }}}}"


MOOD_ICONS = {"angry": "mdi:emoticon-angry-outline", "disgust": "mdi:emoticon-sick-outline",
              "fear": "mdi:emoticon-frown-outline", "happy": "mdi:emoticon-happy-outline",
              "sad": "mdi:emoticon-sad-outline", "surprise": "mdi:emoticon-excited-outline",
              "neutral": "mdi:emoticon-neutral-outline"}

ENTITIES: tuple[Entity, ...] = (
    Entity("sensor", "mood", {
        "name": "Mood", "icon": "mdi:emoticon-outline",
        "state_topic": "state", "value_template": "{{ value_json.mood }}",
        "device_class": "enum", "options": list(STATES),
        "json_attributes_topic": "state",
        "json_attributes_template": "{{ {'scores': value_json.scores, 'since': value_json.since} | tojson }}",
    }),
    Entity("sensor", "confidence", {
        "name": "Mood confidence", "icon": "mdi:gauge",
        "state_topic": "state", "value_template": "{{ (value_json.confidence * 100) | round(1) }}",
        "unit_of_measurement": "%", "state_class": "measurement", "suggested_display_precision": 0,
    }),
    Entity("binary_sensor", "face", {
        "name": "Face present", "device_class": "occupancy",
        "state_topic": "state", "value_template": f"{{{{ '{ON}' if value_json.faces > 0 else '{OFF}' }}}}",
        "payload_on": ON, "payload_off": OFF,
    }),
    Entity("switch", "paused", {
        "name": "Privacy pause", "icon": "mdi:camera-off",
        "command_topic": f"{COMMAND_LEVEL}/paused", "payload_on": ON, "payload_off": OFF,
        "state_topic": "state", "value_template": _on_off("paused"), "state_on": ON, "state_off": OFF,
    }),
    Entity("select", "policy", {
        "name": "Music policy", "icon": "mdi:tune-variant",
        "command_topic": f"{COMMAND_LEVEL}/policy", "options": list(POLICIES),
        "state_topic": "state", "value_template": "{{ value_json.policy }}",
    }),
    Entity("switch", "autoplay", {
        "name": "Autoplay", "icon": "mdi:play-circle-outline",
        "command_topic": f"{COMMAND_LEVEL}/autoplay", "payload_on": ON, "payload_off": OFF,
        "state_topic": "state", "value_template": _on_off("autoplay"), "state_on": ON, "state_off": OFF,
    }),
    Entity("sensor", "music", {
        "name": "Recommended music", "icon": "mdi:music",
        "state_topic": "recommendation", "value_template": _first("music"),
        "json_attributes_topic": "recommendation", "json_attributes_template": _first_attrs("music"),
    }),
    Entity("sensor", "video", {
        "name": "Recommended video", "icon": "mdi:youtube",
        "state_topic": "recommendation", "value_template": _first("videos"),
        "json_attributes_topic": "recommendation", "json_attributes_template": _first_attrs("videos"),
    }),
    Entity("button", "calibrate", {
        "name": "Calibrate resting face", "icon": "mdi:emoticon-neutral-outline",
        "command_topic": f"{COMMAND_LEVEL}/calibrate", "payload_press": "PRESS",
    }),
    Entity("button", "reset_calibration", {
        "name": "Reset calibration", "icon": "mdi:restore", "entity_category": "config",
        "command_topic": f"{COMMAND_LEVEL}/reset_calibration", "payload_press": "PRESS",
    }),
    Entity("button", "snapshot_stats", {
        "name": "Publish stats", "icon": "mdi:chart-box-outline", "entity_category": "diagnostic",
        "command_topic": f"{COMMAND_LEVEL}/snapshot_stats", "payload_press": "PRESS",
    }),
    Entity("sensor", "fps", {
        "name": "Analysed frame rate", "icon": "mdi:speedometer", "entity_category": "diagnostic",
        "state_topic": "stats", "value_template": "{{ value_json.fps }}",
        "unit_of_measurement": "fps", "state_class": "measurement", "suggested_display_precision": 1,
    }),
    Entity("sensor", "cpu", {
        "name": "CPU", "icon": "mdi:cpu-64-bit", "entity_category": "diagnostic",
        "state_topic": "stats", "value_template": "{{ value_json.cpu_percent }}",
        "unit_of_measurement": "%", "state_class": "measurement", "suggested_display_precision": 0,
    }),
    # Minutes in each mood today: total_increasing, so Home Assistant's long-term statistics chart days and
    # weeks from discovery alone (the drop to 0 at midnight starts a new cycle).
    *(Entity("sensor", f"{mood}_minutes_today", {
        "name": f"{mood.capitalize()} minutes today", "icon": MOOD_ICONS[mood],
        "state_topic": "history", "value_template": f"{{{{ value_json.minutes.{mood} }}}}",
        "device_class": "duration", "unit_of_measurement": "min", "state_class": "total_increasing",
        "suggested_display_precision": 0,
    }) for mood in MOODS),
)

_TOPIC_KEYS = ("state_topic", "command_topic", "json_attributes_topic")


def discovery_messages(topics: Topics, sw_version: str) -> list[tuple[str, dict[str, Any]]]:
    """(topic, config) for every entity; publish each retained with QoS 1."""
    dev = topics.device_id
    device = {
        "identifiers": [f"moodcast_{dev}"],
        "name": f"moodcast {dev}",
        "manufacturer": MANUFACTURER,
        "model": MODEL,
        "sw_version": sw_version,
    }
    origin = {"name": "moodcast", "sw_version": sw_version}
    return [(topics.discovery(e.component, e.key), _config(e, topics, device, origin)) for e in ENTITIES]


def cleanup_messages(topics: Topics) -> list[tuple[str, bytes]]:
    """(topic, b"") for every entity: publish retained to remove the entities from Home Assistant."""
    return [(topics.discovery(e.component, e.key), b"") for e in ENTITIES]


def is_ha_online(topic: str, payload: bytes, topics: Topics) -> bool:
    """True for Home Assistant's birth message: time to re-publish discovery and state."""
    return topic == topics.ha_status and payload.strip().lower() == b"online"


def _config(entity: Entity, topics: Topics, device: dict, origin: dict) -> dict[str, Any]:
    object_id = f"moodcast_{topics.device_id}_{entity.key}"
    config = {
        "unique_id": object_id,
        # object_id for HA < 2025.10; default_entity_id replaces it (object_id ignored from 2026.4).
        "object_id": object_id,
        "default_entity_id": f"{entity.component}.{entity_slug(object_id)}",
        **copy.deepcopy(entity.config),
        "availability_topic": topics.of("availability"),
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device,
        "origin": origin,
    }
    for key in _TOPIC_KEYS:
        if key in config:
            config[key] = topics.of(config[key])
    config["qos"] = 1  # subscribe at the contract's QoS; a lost pause command would be a privacy bug
    return config


def entity_slug(object_id: str) -> str:
    """Home Assistant entity ids are lower case [a-z0-9_]."""
    return object_id.lower().replace("-", "_")
