"""The Home Assistant blueprint "when the mood has been X for N minutes, do Y" (deploy/homeassistant/mood_held.yaml):
valid YAML with Home Assistant's `!input` tags, every input defined and used, and every entity id, domain and mood
it names is one that moodcast's MQTT discovery really creates."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from moodcast.mqtt import homeassistant as ha
from moodcast.topics import Topics

BLUEPRINT = Path(__file__).resolve().parents[1] / "deploy" / "homeassistant" / "mood_held.yaml"
ENTITY_ID = re.compile(r"\b(?:sensor|binary_sensor|switch|select|button)\.moodcast_[a-z0-9_]+\b")


class Input(str):
    """A `!input name` reference, as Home Assistant's loader reads it."""


class BlueprintLoader(yaml.SafeLoader):
    pass


BlueprintLoader.add_constructor("!input", lambda loader, node: Input(loader.construct_scalar(node)))


def load() -> dict:
    return yaml.load(BLUEPRINT.read_text(encoding="utf-8"), Loader=BlueprintLoader)  # a SafeLoader: no objects


def references(node) -> list[str]:
    if isinstance(node, Input):
        return [str(node)]
    if isinstance(node, dict):
        return [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def discovered(device_id: str = "livingroom") -> dict[str, dict]:
    """default_entity_id -> discovery config, as Home Assistant creates the entities."""
    configs = ha.discovery_messages(Topics("moodcast", device_id, "homeassistant"), "0.1.0")
    return {config["default_entity_id"]: config for _, config in configs}


def test_it_is_an_automation_blueprint_whose_inputs_are_all_defined_and_used():
    blueprint = load()
    meta = blueprint["blueprint"]
    assert meta["domain"] == "automation" and meta["name"] and meta["input"]
    used = references({k: v for k, v in blueprint.items() if k != "blueprint"})
    assert sorted(set(used)) == sorted(meta["input"]), "an input is defined but unused, or used but undefined"
    assert all("name" in spec and "selector" in spec for spec in meta["input"].values())


def test_the_trigger_is_the_mood_sensor_holding_the_chosen_mood_for_the_minutes():
    blueprint = load()
    assert blueprint["triggers"] == [{"trigger": "state", "entity_id": "mood_sensor", "to": "mood",
                                      "for": {"minutes": "minutes"}}]
    assert [type(v) for v in (blueprint["triggers"][0]["to"], blueprint["actions"])] == [Input, Input]
    minutes = blueprint["blueprint"]["input"]["minutes"]["selector"]["number"]
    assert minutes["min"] >= 1 and minutes["unit_of_measurement"] == "min"


def test_every_entity_id_it_names_is_one_discovery_creates():
    named = set(ENTITY_ID.findall(BLUEPRINT.read_text(encoding="utf-8")))
    assert named and named <= set(discovered()), named - set(discovered())
    assert "sensor.moodcast_livingroom_mood" in named


def test_the_mood_sensor_selector_and_moods_match_the_discovered_mood_entity():
    meta = load()["blueprint"]["input"]
    mood_entity = discovered()["sensor.moodcast_livingroom_mood"]
    (entity_filter,) = meta["mood_sensor"]["selector"]["entity"]["filter"]
    assert entity_filter == {"integration": "mqtt", "domain": "sensor"}
    assert meta["mood"]["selector"]["select"]["options"] == mood_entity["options"]
    assert meta["mood"]["default"] in mood_entity["options"]
