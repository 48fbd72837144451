"""`moodcast mqtt-cleanup`: delete this device's Home Assistant entities and retained topics."""

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


class CleanupError(MoodcastError):
    pass


def cleanup(cfg: Config) -> list[str]:
    m = cfg.mqtt
    client = make_client(m, f"moodcast-cleanup-{cfg.device_id}")
    _connect(client, cfg)
    try:
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
    return [f"cleared {topic}" for topic in topics] + [f"removed {len(topics)} retained topics from {m.host}:{m.port}"]


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


def _clear(client, topics: list[str]) -> None:
    for info in [client.publish(topic, b"", qos=1, retain=True) for topic in topics]:
        info.wait_for_publish(5)
