"""Hostile commands against the real daemon and a real Mosquitto: names and payloads are cut on
arrival, every message on set/... gets a result event, and a flood of big payloads is not kept."""

import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.mosquitto import Subscriber, publish
from tests.daemon_process import write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}


def stats(broker, sub) -> dict:
    sub.clear()
    publish(broker, f"{BASE}/set/snapshot_stats", "")
    return sub.wait_for(f"{BASE}/stats", timeout=30).json()


def test_hostile_commands_are_answered_briefly_and_not_kept(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/event", f"{BASE}/stats"]) as sub, daemon_process(config) as daemon:
        before = stats(mosquitto, sub)
        publish(mosquitto, f"{BASE}/set/policy/extra", "match")
        extra = sub.wait_for(f"{BASE}/event", lambda m: m.json().get("command") == "policy/extra", timeout=30).json()
        assert extra["ok"] is False and "unknown command" in extra["message"]
        publish(mosquitto, f"{BASE}/set/{'x' * 60_000}", "on")
        junk = sub.wait_for(f"{BASE}/event", lambda m: m.json().get("command", "").startswith("xxx"), timeout=30)
        assert len(junk.payload) < 600 and junk.json()["command"] == "x" * 37 + "..."
        client = mosquitto.configure(mqtt.Client(CallbackAPIVersion.VERSION2))
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        for info in [client.publish(f"{BASE}/set/autoplay", b"o" * 30_000_000, qos=1) for _ in range(8)]:
            info.wait_for_publish(120)
        client.disconnect()
        client.loop_stop()
        deadline = time.monotonic() + 120
        while sum("30000000 bytes" in m.json().get("message", "") for m in sub.messages.get(f"{BASE}/event", [])) < 8:
            assert time.monotonic() < deadline, "eight rejections expected"
            time.sleep(0.5)
        after = stats(mosquitto, sub)
        # 240 MB if kept; 1-3 MB measured
        assert after["rss_mb"] < before["rss_mb"] + 40, (before["rss_mb"], after["rss_mb"])
        assert daemon.running()
        out = daemon.output()
    assert max(len(line) for line in out.splitlines()) < 400
