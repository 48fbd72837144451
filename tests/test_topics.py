"""moodcast.topics builds every topic from the checked configuration; the strings here are the
contract of docs/mqtt.md, written out, not rebuilt from the code under test."""

import pytest

from moodcast import config
from moodcast.topics import prefix_problem


def topics(**mqtt):
    return config.parse({"mqtt": {"device_id": "livingroom", **mqtt}}).topics


def test_contract_topics_of_one_device():
    t = topics()
    assert t.base == "moodcast/livingroom"
    assert t.of("state") == "moodcast/livingroom/state"
    assert t.of("availability") == "moodcast/livingroom/availability"
    assert t.commands == "moodcast/livingroom/set/#"
    assert t.this_device == "moodcast/livingroom/#"
    assert t.every_device == "moodcast/+/#"


def test_home_assistant_topics():
    t = topics(discovery_prefix="ha/discovery")
    assert t.discovery("sensor", "mood") == "ha/discovery/sensor/moodcast_livingroom/mood/config"
    assert t.discovery_configs == "ha/discovery/+/moodcast_livingroom/+/config"
    assert t.ha_status == "ha/discovery/status"


def test_a_prefix_of_several_levels_is_used_as_written():
    t = topics(prefix="home/moods")
    assert t.of("event") == "home/moods/livingroom/event"
    assert t.every_device == "home/moods/+/#"


@pytest.mark.parametrize("topic, name", [
    ("moodcast/livingroom/set/policy", "policy"),
    ("moodcast/livingroom/set/policy/extra", "policy/extra"),  # answered with "no such command"
    ("moodcast/livingroom/set/", ""),
    ("moodcast/livingroom/state", None),
    ("moodcast/livingroom2/set/policy", None),
    ("homeassistant/status", None),
])
def test_command_name(topic, name):
    assert topics().command_name(topic) == name


@pytest.mark.parametrize("device_id, level", [("Living Room.Pi-2", "Living_Room_Pi-2"), ("pi@home/üöä", "pi_home"),
                                              ("+#", "moodcast")])
def test_the_device_id_becomes_one_clean_topic_level(device_id, level):
    assert topics(device_id=device_id).base == f"moodcast/{level}"


@pytest.mark.parametrize("prefix", ["moodcast", "home/moods", "a b", "ü" * 64])
def test_usable_prefixes(prefix):
    assert prefix_problem(prefix) is None
