"""What the daemon publishes, on its way to paho: retained topics coalesced, events bounded.

paho queues every publish it is given; a burst of commands (each answered by an event and a new
state) used to overflow its queue and lose messages silently, the last state among them. Here:

- a retained topic (state, recommendation, playback, discovery, availability) is one slot holding
  its newest payload, with at most one publish in flight: when that is acknowledged and the slot
  changed meanwhile, the newest payload follows. The broker always ends on the latest value, in
  order, however many updates were made;
- events and stats queue up to EVENT_BACKLOG, with EVENTS_IN_FLIGHT handed to paho at a time;
  beyond that, and while the broker is away, they are dropped and counted (`dropped`);
- after a (re)connect, `online` goes out last, once every retained topic is current at the broker;
- a publish the broker refuses (MQTT 5 PUBACK with a failure reason code, e.g. Not authorized by its
  ACL) is counted (`refused`) and logged once per topic; a refused retained topic is offered again
  after RETRY_REFUSED_S (or with its next value), so it reaches the broker once the ACL allows it.

One thread hands messages to paho, so no lock of ours is held while paho takes its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as paho

log = logging.getLogger("moodcast.mqtt")
EVENT_BACKLOG = 256  # events waiting for the broker; a burst of 64 commands needs 64
EVENTS_IN_FLIGHT = 20  # paho's own in-flight window for QoS 1
RETRY_REFUSED_S = 60.0  # a retained topic the broker refused is offered again after this long
_SENDING = -1  # a slot's mid while its publish call is under way


@dataclass(frozen=True)
class Outgoing:
    topic: str
    data: bytes
    qos: int
    retain: bool


@dataclass
class _Slot:
    """One retained topic: its newest payload, and the publish in flight (mid) if any."""
    data: bytes
    qos: int
    dirty: bool = True
    mid: int | None = None
    retry_at: float | None = None  # refused by the broker: offered again then (monotonic)

    @property
    def idle(self) -> bool:
        return not self.dirty and self.mid is None


class Outbox:
    def __init__(self, send: Callable[[Outgoing], paho.MQTTMessageInfo], availability_topic: str,
                 online_payload: bytes):
        self._send, self._availability, self._online_payload = send, availability_topic, online_payload
        self._cond = threading.Condition()
        self._slots: dict[str, _Slot] = {}
        self._events: deque[Outgoing] = deque()
        self._in_flight: dict[int, tuple[str | None, Outgoing]] = {}  # mid -> (retained topic or None, message)
        self._acked_early: dict[int, str] = {}  # mid -> refusal ("" if none): acknowledged before it was recorded
        self._events_in_flight = 0
        self._connected = False
        self._closed = False
        self.dropped = 0  # events and stats that never reached paho
        self.refused = 0  # publishes the broker answered with a failure reason code
        self._refused_topics: set[str] = set()  # logged once each (our own topics: a bounded set)
        self._thread = threading.Thread(target=self._run, name="moodcast-mqtt-out", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- producers (any thread) ------------------------------------------------------------
    def put(self, message: Outgoing) -> None:
        with self._cond:
            if message.retain:  # a publish in flight keeps its mid: the new value follows its PUBACK
                slot = self._slots.setdefault(message.topic, _Slot(message.data, message.qos))
                slot.data, slot.qos, slot.dirty = message.data, message.qos, True
            elif not self._connected or len(self._events) >= EVENT_BACKLOG:
                self.dropped += 1
                return
            else:
                self._events.append(message)
            self._cond.notify()

    # -- paho's network thread -------------------------------------------------------------
    def connected(self) -> None:
        """After CONNACK: every retained topic again, `online` last."""
        with self._cond:
            self._connected = True
            # QoS 0 messages caught by a disconnect are gone (QoS 1 ones paho sends again)
            for mid in [mid for mid, (_, message) in self._in_flight.items() if message.qos == 0]:
                self._complete(mid)
        self.refresh()

    def refresh(self) -> None:
        """Publish every retained topic again (Home Assistant restarted), `online` last."""
        with self._cond:
            self._slots.setdefault(self._availability, _Slot(self._online_payload, 1))
            for slot in self._slots.values():
                slot.dirty, slot.retry_at = True, None
            self._cond.notify()

    def disconnected(self) -> None:
        with self._cond:
            self._connected = False

    def acknowledged(self, mid: int, refusal: str = "") -> None:
        """PUBACK (or a QoS 0 publish written); `refusal` is the broker's failure reason code, if any."""
        with self._cond:
            if mid in self._in_flight:
                self._complete(mid, refusal)
            else:
                self._acked_early[mid] = refusal
            self._cond.notify()

    # -- shutdown ------------------------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is at the broker (or the broker is away); True if it is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._connected or self._drained(), timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(2.0)

    # -- the sender thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._closed or self._due()):
                    self._cond.wait(self._until_retry())  # the timeout is computed again after every wake-up
                    self._offer_refused_again()
                if self._closed:
                    return
                batch = self._take()
            for topic, message in batch:
                self._record(topic, message, self._send_safely(message))

    def _due(self) -> bool:
        return self._connected and bool(self._events and self._events_in_flight < EVENTS_IN_FLIGHT
                                        or any(self._ready(topic, slot) for topic, slot in self._slots.items()))

    def _ready(self, topic: str, slot: _Slot) -> bool:
        if not slot.dirty or slot.mid is not None:
            return False
        # `online` only once every other retained topic is current at the broker
        return topic != self._availability or all(s.idle for t, s in self._slots.items() if t != topic)

    def _until_retry(self) -> float | None:
        """Seconds until the next refused retained topic is offered again; None when none waits."""
        times = [slot.retry_at for slot in self._slots.values() if slot.retry_at is not None]
        return max(0.0, min(times) - time.monotonic()) if times else None

    def _offer_refused_again(self) -> None:
        now = time.monotonic()
        for slot in self._slots.values():
            if slot.retry_at is not None and slot.retry_at <= now:
                slot.dirty, slot.retry_at = True, None

    def _take(self) -> list[tuple[str | None, Outgoing]]:
        batch: list[tuple[str | None, Outgoing]] = []
        while self._events and self._events_in_flight < EVENTS_IN_FLIGHT:
            batch.append((None, self._events.popleft()))
            self._events_in_flight += 1
        for topic, slot in list(self._slots.items()):
            if self._ready(topic, slot):
                slot.dirty, slot.mid = False, _SENDING
                batch.append((topic, Outgoing(topic, slot.data, slot.qos, True)))
        return batch

    def _send_safely(self, message: Outgoing) -> paho.MQTTMessageInfo | None:
        try:
            return self._send(message)
        except (ValueError, OSError) as e:  # a topic or payload paho refuses; never kill this thread
            log.error("cannot publish to %s: %s", message.topic[:200], e)
            return None

    def _record(self, owner: str | None, message: Outgoing, info: paho.MQTTMessageInfo | None) -> None:
        with self._cond:
            # QoS 1 while disconnected (NO_CONN) stays in paho's queue and is sent on reconnect
            kept = info is not None and (info.rc == paho.MQTT_ERR_SUCCESS or
                                         (info.rc == paho.MQTT_ERR_NO_CONN and message.qos > 0))
            if info is None or not kept:
                self._release(owner)
                self.dropped += owner is None
                return
            self._in_flight[info.mid] = (owner, message)
            if info.mid in self._acked_early:
                self._complete(info.mid, self._acked_early.pop(info.mid))

    def _complete(self, mid: int, refusal: str = "") -> None:
        owner, message = self._in_flight.pop(mid)
        if refusal:
            self._refused(owner, message.topic, refusal)
        self._release(owner)

    def _refused(self, owner: str | None, topic: str, refusal: str) -> None:
        self.refused += 1
        if owner in self._slots and not self._slots[owner].dirty:  # a newer value would be tried anyway
            self._slots[owner].retry_at = time.monotonic() + RETRY_REFUSED_S
        if topic not in self._refused_topics:
            self._refused_topics.add(topic)
            log.error("the broker refused a publish to %s: %s; check its ACL for this client. Further refusals "
                      "are only counted (stats: mqtt_denied)%s", topic, refusal,
                      f"; offered again every {RETRY_REFUSED_S:g} s" if owner else "")

    def _release(self, owner: str | None) -> None:
        if owner is None:
            self._events_in_flight -= 1
        elif owner in self._slots:
            self._slots[owner].mid = None
        self._cond.notify_all()

    def _drained(self) -> bool:
        return not self._events and not self._events_in_flight and all(s.idle for s in self._slots.values())
