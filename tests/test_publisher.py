"""The Publisher on its own, fast: what it stamps, and how it spaces the retained state and the stats.
The link under it is a recorder with MqttLink's interface, and time is a clock the test moves;
the same messages through the real MqttLink and Mosquitto are in test_daemon_e2e.py."""

from __future__ import annotations

import json
import threading

import jsonschema
import pytest

from moodcast.labels import MOODS
from moodcast.mqtt import homeassistant, payloads
from moodcast.mqtt.payloads import State, Stats, faces_event
from moodcast.mqtt.publisher import SCORE_CHANGE, STATE_REFRESH_S, Publisher
from moodcast.topics import Topics

STATS_INTERVAL_S = 60.0


class Link:
    """Records what MqttLink would be asked to publish."""

    def __init__(self) -> None:
        self.topics = Topics("moodcast", "livingroom")
        self.connected = threading.Event()
        self.published: list[tuple[str, dict]] = []
        self.raw: list[tuple[str, bytes, int, bool]] = []

    def publish(self, kind: str, payload: dict) -> None:
        self.published.append((kind, payload))

    def publish_raw(self, topic: str, data: bytes, qos: int = 1, retain: bool = True) -> None:
        self.raw.append((topic, data, qos, retain))

    def states(self) -> list[dict]:
        return [payload for kind, payload in self.published if kind == "state"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def link():
    return Link()


@pytest.fixture
def publisher(link, clock):
    return Publisher(link, STATS_INTERVAL_S, clock)


def a_state(mood="happy", faces=1, happy=0.8, **settings) -> State:
    scores = {m: 0.0 for m in MOODS} | {"happy": happy, "neutral": round(1 - happy, 4)}
    return State(mood, happy, scores, faces, 1777650245.0, **{"paused": False, "policy": "uplift",
                                                               "autoplay": False, **settings})


def test_every_message_is_stamped_once_and_matches_its_schema(publisher, link):
    publisher.publish(faces_event(2))
    publisher.state(a_state())
    publisher.publish(Stats({"fps": 4.9}))
    (kind, event), (_, state), (_, stats) = link.published
    assert kind == "event" and list(event) == ["schema", "type", "faces", "timestamp"]
    assert event["schema"] == payloads.SCHEMA_VERSION and event["timestamp"].endswith("Z")
    jsonschema.validate(event, payloads.load_schema("event"))
    jsonschema.validate(state, payloads.load_schema("state"))
    assert stats["fps"] == 4.9


def test_bodies_built_elsewhere_are_stamped_too(publisher, link):
    publisher.publish_body("recommendation", {"mood": "happy"})
    assert link.published[0][1]["schema"] == payloads.SCHEMA_VERSION and "timestamp" in link.published[0][1]


def test_the_state_goes_out_when_more_than_the_scores_changed(publisher, link):
    publisher.state(a_state())
    publisher.state(a_state())
    assert len(link.states()) == 1  # nothing changed: nothing sent
    publisher.state(a_state(faces=2))
    publisher.state(a_state(faces=2, paused=True))
    publisher.state(a_state(faces=2, paused=True, policy="match"))
    publisher.state(a_state(mood="neutral", faces=2, paused=True, policy="match"))
    assert len(link.states()) == 5


def test_score_only_changes_are_spaced_and_must_be_large_enough(publisher, link, clock):
    publisher.state(a_state(happy=0.80))
    clock.now += STATE_REFRESH_S / 2
    publisher.state(a_state(happy=0.80 - SCORE_CHANGE))
    assert len(link.states()) == 1  # a real move, but too soon
    clock.now += STATE_REFRESH_S
    publisher.state(a_state(happy=0.80 - SCORE_CHANGE / 2))
    assert len(link.states()) == 1  # in time, but too small a move
    publisher.state(a_state(happy=0.80 - SCORE_CHANGE))
    assert [s["scores"]["happy"] for s in link.states()] == [0.8, 0.75]


def test_a_forced_state_always_goes_out(publisher, link):
    publisher.state(a_state())
    publisher.state(a_state(), force=True)  # after a command: the answer must come with a state
    assert len(link.states()) == 2


def test_stats_are_due_once_connected_then_every_interval_or_when_asked(publisher, link, clock):
    assert not publisher.stats_due()  # not connected yet: Home Assistant would not hear them
    link.connected.set()
    assert publisher.stats_due()  # at once, so the previous run's fps and CPU do not linger
    assert not publisher.stats_due()
    clock.now += STATS_INTERVAL_S - 1
    assert not publisher.stats_due()
    assert publisher.stats_due(force=True)  # snapshot_stats
    clock.now += STATS_INTERVAL_S
    assert publisher.stats_due()
    assert not publisher.stats_due()


def test_discovery_configs_go_out_retained_on_the_links_topics(publisher, link):
    publisher.discovery("1.2.3")
    expected = homeassistant.discovery_messages(link.topics, "1.2.3")
    assert [(topic, json.loads(data)) for topic, data, _, _ in link.raw] == expected
    assert all(qos == 1 and retain for _, _, qos, retain in link.raw)
    assert link.raw[0][0] == "homeassistant/sensor/moodcast_livingroom/mood/config"


def test_without_mqtt_everything_is_dropped_quietly(clock):
    publisher = Publisher(None, STATS_INTERVAL_S, clock)
    publisher.publish(faces_event(1))
    publisher.state(a_state(), force=True)
    publisher.discovery("1.2.3")
    clock.now += STATS_INTERVAL_S
    assert publisher.stats_due()  # the daemon still counts; there is just no one to tell
