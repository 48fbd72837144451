"""`moodcast mqtt-cleanup`: delete this device's Home Assistant entities and retained topics.

A running daemon would publish them all again within seconds (its state at once, discovery when Home
Assistant restarts), so the cleanup refuses while the device's availability topic says `online`,
unless forced (a stale `online` left by a broker that kept it through a crash).
"""

from __future__ import annotations

import threading
import time

from moodcast.config import Config
from moodcast.errors import MoodcastError
from moodcast.mqtt import homeassistant, payloads
from moodcast.mqtt.link import make_client

RETAINED_KINDS = [kind for kind, spec in payloads.TOPICS.items() if spec.retain]
CONNECT_TIMEOUT_S = 10.0
ENTITIES_GONE_S = 1.0  # Home Assistant removes the entities (and their state templates) in this time
RETAINED_WAIT_S = 1.5  # a broker sends a retained message right after the SUBACK; none by then: there is none


class CleanupError(MoodcastError):
    pass


def cleanup(cfg: Config, force: bool = False) -> list[str]:
    m = cfg.mqtt
    client = make_client(m, f"moodcast-cleanup-{cfg.device_id}")
    _connect(client, cfg)
    try:
        notes = [] if force else _refuse_while_online(client, cfg.topics.of("availability"))
        entities = [t for t, _ in homeassistant.cleanup_messages(cfg.topics)]
        states = [cfg.topics.of(kind) for kind in RETAINED_KINDS]
        # entities first: a state cleared while Home Assistant still has the entity fails its templates
        _clear(client, entities)
        time.sleep(ENTITIES_GONE_S)
        _clear(client, states)
    finally:
        client.disconnect()
        client.loop_stop()
    topics = entities + states
    done = f"removed {len(topics)} retained topics from {m.host}:{m.port}"
    return notes + [f"cleared {topic}" for topic in topics] + [done]


def _connect(client, cfg: Config) -> None:
    """Connected, or CleanupError saying why (unreachable, refused login, no answer)."""
    m = cfg.mqtt
    answered, outcome = threading.Event(), []

    def on_connect(_c, _u, _f, reason_code, _p) -> None:
        outcome.append(reason_code)
        answered.set()
    client.on_connect = on_connect
    try:
        client.connect(m.host, m.port, keepalive=m.keepalive_s)
    except OSError as e:
        raise CleanupError(f"cannot connect to {m.host}:{m.port}: {e.strerror or e}") from None
    client.loop_start()
    if not answered.wait(CONNECT_TIMEOUT_S) or outcome[0].is_failure:
        client.loop_stop()
        why = f"refused the connection: {outcome[0]}" if outcome else f"no answer within {CONNECT_TIMEOUT_S:g} s"
        raise CleanupError(f"broker {m.host}:{m.port} {why}")


def _refuse_while_online(client, availability: str) -> list[str]:
    """CleanupError while `availability` says online; a note when the broker would not let us read it."""
    subscribed, received, granted, seen = threading.Event(), threading.Event(), [], []

    def on_subscribe(_c, _u, _mid, reason_codes, _p) -> None:
        granted.extend(reason_codes)
        subscribed.set()

    def on_message(_c, _u, message) -> None:
        seen.append(message.payload)
        received.set()
    client.on_subscribe, client.on_message = on_subscribe, on_message
    client.subscribe(availability, qos=1)
    if not subscribed.wait(CONNECT_TIMEOUT_S) or any(code.is_failure for code in granted):
        return [f"(could not read {availability}: make sure the daemon is stopped, or it publishes again)"]
    received.wait(RETAINED_WAIT_S)
    if seen and seen[0] == payloads.ONLINE.encode():
        raise CleanupError(f"the daemon is online ({availability} says {payloads.ONLINE}) and would publish its "
                           "entities and state again: stop it first (sudo systemctl stop moodcast), or add --force "
                           "if that is stale")
    client.unsubscribe(availability)
    return []


def _clear(client, topics: list[str]) -> None:
    for info in [client.publish(topic, b"", qos=1, retain=True) for topic in topics]:
        info.wait_for_publish(5)
