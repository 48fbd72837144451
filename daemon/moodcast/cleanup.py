"""`moodcast mqtt-cleanup`: delete this device's Home Assistant entities and retained topics."""

from __future__ import annotations

from moodcast import homeassistant, payloads
from moodcast.config import Config
from moodcast.mqtt import make_client

RETAINED_KINDS = [kind for kind, spec in payloads.TOPICS.items() if spec.retain]


class CleanupError(Exception):
    pass


def cleanup(cfg: Config) -> list[str]:
    m = cfg.mqtt
    client = make_client(m, f"moodcast-cleanup-{cfg.device_id}")
    try:
        client.connect(m.host, m.port, keepalive=m.keepalive_s)
    except OSError as e:
        raise CleanupError(f"cannot connect to {m.host}:{m.port}: {e.strerror or e}") from None
    client.loop_start()
    base = payloads.base_topic(m.prefix, cfg.device_id)
    topics = [t for t, _ in homeassistant.cleanup_messages(cfg.device_id, m.discovery_prefix)]
    topics += [f"{base}/{kind}" for kind in RETAINED_KINDS]
    for topic in topics:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    return [f"cleared {topic}" for topic in topics] + [f"removed {len(topics)} retained topics from {m.host}:{m.port}"]
