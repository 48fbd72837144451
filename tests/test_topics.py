"""moodcast.topics builds every topic from the checked configuration; the strings here are the
contract of docs/mqtt.md, written out, not rebuilt from the code under test."""

import json
import socket

import pytest

from moodcast import config
from moodcast.topics import device_id_problem, prefix_problem, sanitise_id


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


@pytest.mark.parametrize("host, level", [("Living Room.Pi-2", "Living_Room_Pi-2"), ("pi@home/üöä", "pi_home"),
                                         ("+#", "moodcast")])
def test_the_host_name_becomes_one_clean_topic_level(monkeypatch, host, level):
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    assert topics(device_id="").base == f"moodcast/{level}"  # an empty device_id takes the host name


@pytest.mark.parametrize("device_id", ["a/b", "a+b", "a#b", "a b", "+", "#", "/", "é", "_a", "a_", " a"])
def test_a_device_id_that_would_change_is_refused(device_id):
    """`a/b`, `a+b`, `a#b` and `a b` were all cut down to `a_b`, and `+`, `#`, `/` and `é` to `moodcast`:
    two devices on one set of topics without a word."""
    with pytest.raises(config.ConfigError) as refused:
        topics(device_id=device_id)
    assert str(refused.value) == (
        'config.toml: [mqtt] device_id: expected only letters, digits, "_" and "-", no "_" at either end (it '
        f'becomes a topic level and a Home Assistant id; cut down to "{sanitise_id(device_id)}" it could be '
        f"another device's), got {json.dumps(device_id, ensure_ascii=False)}")


@pytest.mark.parametrize("device_id", ["livingroom", "Living-Room_2", "pi-5", "a_b"])
def test_a_clean_device_id_is_used_as_written(device_id):
    assert device_id_problem(device_id) is None and topics(device_id=device_id).device_id == device_id


@pytest.mark.parametrize("prefix", ["moodcast", "home/moods", "a b", "ü" * 64])
def test_usable_prefixes(prefix):
    assert prefix_problem(prefix) is None
