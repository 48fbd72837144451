"""Hostile commands against the real daemon and a real Mosquitto: names and payloads are cut on
arrival, every message on set/... gets a result event, and a flood of big payloads is not kept."""

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.mosquitto import Mosquitto, Subscriber, publish
from tests.daemon_process import write_config
from tests.media import ROOT, SAMPLES

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


INSTALLER_BROKER_CONF = ROOT / "deploy" / "mosquitto" / "moodcast.conf"  # what install.sh --with-mosquitto adds


def memory_mb(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def reset_peak(pid: int) -> None:
    """VmHWM from now on (Linux: "5" to clear_refs resets the peak RSS to the current RSS)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def send_32_mb(broker) -> bool:
    """Publish one 32 MB command; True if the broker took it (PUBACK), False if it cut us off."""
    client = broker.configure(mqtt.Client(CallbackAPIVersion.VERSION2))
    answered = threading.Event()
    client.on_publish = client.on_disconnect = lambda *_: answered.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        info = client.publish(f"{BASE}/set/policy", b"m" * (32 << 20), qos=1)
        assert answered.wait(60), "neither a PUBACK nor a disconnect"
        return info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("protocol, broker_limit", [("5", False), ("3.1.1", True)])
def test_a_32_mb_message_leaves_the_daemon_flat(tmp_path, protocol, broker_limit, daemon_process):
    """MQTT 5: the daemon's CONNECT says it takes at most 64 KiB, so the broker never sends it the
    message. MQTT 3.1.1 cannot say so: there the installer's broker limit keeps it out."""
    broker = Mosquitto(tmp_path / "mosquitto")
    if broker_limit:
        broker.conf_file.write_text(broker.conf_file.read_text() + INSTALLER_BROKER_CONF.read_text())
    broker.start()
    try:
        config = write_config(tmp_path / "config.toml", broker, camera=LOOP, mqtt={"protocol": protocol})
        with Subscriber(broker, [f"{BASE}/event", f"{BASE}/stats"]) as sub, daemon_process(config) as daemon:
            before = stats(broker, sub)
            time.sleep(2)  # past the start-up allocations
            reset_peak(daemon.proc.pid)
            start = memory_mb(daemon.proc.pid)
            accepted = send_32_mb(broker)
            after = stats(broker, sub)  # a command sent after it has been through: the big one was handled
            peak = memory_mb(daemon.proc.pid)["VmHWM"]
            assert not [m for m in sub.messages.get(f"{BASE}/event", []) if m.json().get("command") == "policy"]
            assert daemon.running()
        assert accepted is not broker_limit  # the installer's broker cut the sender off
        # 3.1.1 without the broker's limit: peak +105 MB (RSS 187 -> 292 MB) measured
        assert peak - start["VmRSS"] < 8, (start, peak, before["rss_mb"], after["rss_mb"])
    finally:
        broker.kill()


def test_a_flood_of_junk_commands_writes_a_few_lines_and_every_result_is_counted(tmp_path, mosquitto,
                                                                                  daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/event", f"{BASE}/stats"]) as sub, daemon_process(config) as daemon:
        stats(mosquitto, sub)
        client = mosquitto.configure(mqtt.Client(CallbackAPIVersion.VERSION2))
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        for info in [client.publish(f"{BASE}/set/policy", f"sideways {i}", qos=1) for i in range(3000)]:
            info.wait_for_publish(30)
        client.disconnect()
        client.loop_stop()
        sub.wait_for(f"{BASE}/event", lambda m: m.json().get("command") == "policy", timeout=30)
        rejections = [m.json() for m in sub.messages.get(f"{BASE}/event", []) if m.json().get("command") == "policy"]
        assert all(e["ok"] is False and e["message"].startswith("policy: expected one of") for e in rejections)
        stats(mosquitto, sub)  # asked for after the flood, so the flood has been through
        assert daemon.running()
    lines = daemon.output().splitlines()
    assert len([line for line in lines if "rejected command" in line]) <= 5  # per minute: 3,000 before
    assert len(lines) < 40, lines[-10:]
