"""The Outbox on its own, fast: paho's side is played by a recorder that hands out message ids, and
the test plays the broker by acknowledging them. The same rules against a real Mosquitto and the
real daemon are in test_mqtt_burst.py and test_mqtt_faults.py."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
import pytest

from moodcast.mqtt.outbox import EVENT_BACKLOG, EVENTS_IN_FLIGHT, Outbox, Outgoing

ONLINE = Outgoing("m/dev/availability", b"online", 1, True)


class Paho:
    """What paho's publish() does for the Outbox: takes a message, gives it a mid (and a result code)."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.rc = paho.MQTT_ERR_SUCCESS
        self.refuse: set[str] = set()  # topics whose publish raises, as paho does for a bad topic
        self._cond = threading.Condition()

    def send(self, message: Outgoing) -> paho.MQTTMessageInfo:
        with self._cond:
            if message.topic in self.refuse:
                raise ValueError("Publish topic cannot contain wildcards.")
            self.sent.append(message)
            info = paho.MQTTMessageInfo(len(self.sent))
            info.rc = self.rc
            self._cond.notify_all()
            return info

    def wait_sent(self, count: int, timeout: float = 5.0) -> list[Outgoing]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.sent) >= count, timeout), self.sent
            return list(self.sent)

    def mid_of(self, message: Outgoing) -> int:
        return self.sent.index(message) + 1  # mids are handed out in order, from 1


@pytest.fixture
def client():
    return Paho()


@pytest.fixture
def outbox(client):
    box = Outbox(client.send, ONLINE.topic, ONLINE.data)
    yield box
    box.close()


def retained(topic: str, data: bytes) -> Outgoing:
    return Outgoing(f"m/dev/{topic}", data, 1, True)


def event(n: int) -> Outgoing:
    return Outgoing("m/dev/event", str(n).encode(), 1, False)


def quiet() -> None:
    """Time for the sender thread to send something it should not."""
    time.sleep(0.2)


def test_online_goes_out_last_once_every_retained_topic_is_at_the_broker(client, outbox):
    state, recommendation = retained("state", b"s1"), retained("recommendation", b"r1")
    outbox.put(state)
    outbox.put(recommendation)
    outbox.start()
    outbox.connected()
    assert client.wait_sent(2) == [state, recommendation]
    outbox.acknowledged(client.mid_of(state))
    quiet()
    assert ONLINE not in client.sent  # the recommendation is not acknowledged yet
    outbox.acknowledged(client.mid_of(recommendation))
    assert client.wait_sent(3)[-1] == ONLINE


def test_a_retained_topic_coalesces_to_its_newest_value_while_one_is_in_flight(client, outbox):
    outbox.start()
    outbox.connected()
    assert client.wait_sent(1) == [ONLINE]
    first = retained("state", b"1")
    outbox.put(first)
    client.wait_sent(2)
    for value in (b"2", b"3", b"4"):
        outbox.put(retained("state", value))
    quiet()
    assert len(client.sent) == 2  # one publish of a topic in flight at a time
    outbox.acknowledged(client.mid_of(first))
    assert client.wait_sent(3)[2] == retained("state", b"4")  # the newest value follows, the others never go
    quiet()
    assert len(client.sent) == 3


def test_events_beyond_the_backlog_are_dropped_and_counted(client, outbox):
    outbox.connected()  # the sender thread is not started yet: nothing leaves the queue
    for n in range(EVENT_BACKLOG + 5):
        outbox.put(event(n))
    assert outbox.dropped == 5
    outbox.start()
    client.wait_sent(EVENTS_IN_FLIGHT + 1)  # `online`, and paho's in-flight window of events
    quiet()
    assert len(client.sent) == EVENTS_IN_FLIGHT + 1
    acknowledged = 0
    while acknowledged < EVENT_BACKLOG + 1:  # play the broker: each acknowledgement lets one more go
        sent = client.wait_sent(acknowledged + 1)
        for mid in range(acknowledged + 1, len(sent) + 1):
            outbox.acknowledged(mid)
        acknowledged = len(sent)
    assert outbox.flush(5)
    events = [m for m in client.sent if m.topic.endswith("/event")]
    assert [m.data for m in events] == [str(n).encode() for n in range(EVENT_BACKLOG)]  # in order, none twice


def test_events_while_the_broker_is_away_are_dropped_and_counted_retained_topics_wait(client, outbox):
    outbox.start()
    outbox.put(event(1))
    outbox.put(Outgoing("m/dev/stats", b"{}", 0, False))
    state = retained("state", b"while away")
    outbox.put(state)
    quiet()
    assert client.sent == [] and outbox.dropped == 2
    outbox.connected()
    assert client.wait_sent(1) == [state]


def test_flush_waits_for_the_broker_then_close_stops_the_sender(client, outbox):
    outbox.start()
    outbox.connected()
    client.wait_sent(1)
    outbox.acknowledged(1)
    for n in range(3):
        outbox.put(event(n))
    client.wait_sent(4)
    assert not outbox.flush(0.2)  # three events not yet acknowledged
    acks = threading.Timer(0.2, lambda: [outbox.acknowledged(mid) for mid in (2, 3, 4)])
    acks.start()
    assert outbox.flush(5)
    outbox.close()
    outbox.put(retained("state", b"after close"))
    quiet()
    assert len(client.sent) == 4


def test_flush_does_not_wait_for_a_broker_that_is_away(client, outbox):
    outbox.start()
    outbox.connected()
    client.wait_sent(1)  # `online`, never acknowledged
    outbox.disconnected()
    started = time.monotonic()
    outbox.flush(5)
    assert time.monotonic() - started < 1


def test_an_acknowledgement_before_the_sender_recorded_the_mid_still_counts(client):
    acknowledge_at_once = client.send

    def send(message: Outgoing) -> paho.MQTTMessageInfo:
        info = acknowledge_at_once(message)
        box.acknowledged(info.mid)  # paho's thread can be this quick
        return info

    box = Outbox(send, ONLINE.topic, ONLINE.data)
    box.start()
    box.connected()
    box.put(retained("state", b"1"))
    client.wait_sent(2)
    box.put(retained("state", b"2"))
    assert client.wait_sent(3)[2] == retained("state", b"2")  # the slot was released, so the next value went
    assert box.flush(5)
    box.close()


def test_while_paho_has_no_connection_it_keeps_qos1_and_qos0_is_dropped(client, outbox):
    outbox.start()
    outbox.connected()
    client.wait_sent(1)
    outbox.acknowledged(1)
    client.rc = paho.MQTT_ERR_NO_CONN  # the connection dropped under paho: it keeps QoS 1, not QoS 0
    outbox.put(Outgoing("m/dev/stats", b"{}", 0, False))
    outbox.put(event(1))
    client.wait_sent(3)
    quiet()
    assert outbox.dropped == 1  # the stats
    assert not outbox.flush(0.2)  # the event is still paho's to send


def test_a_message_paho_refuses_is_logged_and_does_not_stop_the_sender(client, outbox, caplog):
    client.refuse.add("m/dev/event")
    outbox.start()
    outbox.connected()
    client.wait_sent(1)
    outbox.put(event(1))
    outbox.put(retained("state", b"after"))
    assert client.wait_sent(2)[1] == retained("state", b"after")
    assert outbox.dropped == 1
    assert "cannot publish to m/dev/event" in caplog.text
