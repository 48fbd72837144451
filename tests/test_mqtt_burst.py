"""Bursts of commands against the real daemon and a real Mosquitto: no message is lost to paho's
queue, and the retained state always ends on the last command, however long the burst."""

import random
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.mosquitto import Subscriber, publish
from tests.daemon_process import STARTUP, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}
BURST = 64  # the daemon takes up to 64 commands between two frames


def burst(broker, command: str, values: list[str]) -> None:
    send(broker, [(command, value) for value in values])


def send(broker, commands: list[tuple[str, str]]) -> None:
    """Publish (name, payload) commands as fast as paho goes, and wait until the broker has them all."""
    client = broker.configure(mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"burst-{random.random()}"))
    client.connect(broker.host, broker.port)
    client.loop_start()
    infos = [client.publish(f"{BASE}/set/{name}", payload, qos=1) for name, payload in commands]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()


# every kind of message on set/...: the settings, their aliases, stats, and invalid ones
MIXED = [("resume", ""), ("paused", "OFF"), ("pause", ""), ("policy", "uplift"), ("policy", "off"),
         ("policy", "sideways"), ("autoplay", "on"), ("autoplay", "off"), ("snapshot_stats", ""), ("reboot", "now")]


def mixed_burst(rng: random.Random, size: int, last: tuple[str, str]) -> list[tuple[str, str]]:
    return [rng.choice(MIXED) for _ in range(size - 1)] + [last]


def retained_state(broker) -> dict:
    """The state the broker holds for a newcomer ({} when it holds none yet)."""
    with Subscriber(broker, [f"{BASE}/state"]) as late:
        time.sleep(0.5)  # retained messages arrive right after SUBACK
        return next((m.json() for m in late.messages.get(f"{BASE}/state", []) if m.retain), {})


def settles_on(broker, key: str, expected, timeout: float = 20.0) -> bool:
    """The broker's retained state reaches `expected` and is still there a second later."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if retained_state(broker).get(key) == expected:
            time.sleep(1.0)
            return retained_state(broker).get(key) == expected
        time.sleep(0.2)
    return False


def command_events(sub, command: str) -> list[dict]:
    return [m.json() for m in sub.messages.get(f"{BASE}/event", []) if m.json().get("command") == command]


def wait_events(sub, command: str, count: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(command_events(sub, command)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return command_events(sub, command)


def test_a_burst_of_64_commands_gives_64_events_and_the_last_state(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    values = ["on" if i % 2 else "off" for i in range(BURST - 1)] + ["on"]
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "online", timeout=STARTUP)
        burst(mosquitto, "autoplay", values)
        events = wait_events(sub, "autoplay", BURST)
        assert [e["value"] for e in events] == [v == "on" for v in values]  # all 64, in order
        assert settles_on(mosquitto, "autoplay", True)
        sub.clear()
        publish(mosquitto, f"{BASE}/set/snapshot_stats", "")
        stats = sub.wait_for(f"{BASE}/stats", timeout=10).json()
        assert stats["mqtt_dropped"] == 0, stats
        assert daemon.running()


def test_retained_state_ends_on_the_last_command_in_20_of_20_bursts_while_paused(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    rng = random.Random(12)
    with Subscriber(mosquitto, [f"{BASE}/event", f"{BASE}/availability"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "online", timeout=STARTUP)
        publish(mosquitto, f"{BASE}/set/paused", "ON")
        assert settles_on(mosquitto, "paused", True)
        outcomes = []
        for trial in range(20):
            last = ("match", "uplift", "off")[trial % 3]
            values = [rng.choice([p for p in ("match", "uplift", "off") if p != last]) for _ in range(BURST - 1)]
            sub.clear()
            burst(mosquitto, "policy", values + [last])
            assert len(wait_events(sub, "policy", BURST)) == BURST
            outcomes.append(settles_on(mosquitto, "policy", last))
        assert outcomes == [True] * 20
        assert daemon.running()


def latest_state(sub, key: str, expected, quiet: float = 0.6, timeout: float = 60.0) -> bool:
    """The daemon's newest state says `expected` once it has published nothing new for `quiet` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(sub.messages.get(f"{BASE}/state", []))
        time.sleep(quiet)
        states = sub.messages.get(f"{BASE}/state", [])
        if states and len(states) == count:
            return states[-1].json().get(key) == expected
    return False


def test_a_burst_of_5000_mixed_commands_ending_on_paused_on_pauses_in_20_of_20(tmp_path, mosquitto, daemon_process):
    """The issue's privacy case: a long burst of every kind of command, the last `paused ON`. The
    inbox overflows (and says so), and the camera must end up released every time."""
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    rng = random.Random(25)
    with Subscriber(mosquitto, [f"{BASE}/state"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", timeout=STARTUP)
        outcomes = []
        for _ in range(20):
            sub.clear()
            publish(mosquitto, f"{BASE}/set/paused", "OFF")  # each trial starts from a running camera
            sub.wait_for(f"{BASE}/state", lambda m: m.json()["paused"] is False, timeout=20)
            sub.clear()
            send(mosquitto, mixed_burst(rng, 5000, ("paused", "ON")))
            live = latest_state(sub, "paused", True)
            with Subscriber(mosquitto, [f"{BASE}/state"]) as late:
                retained = late.wait_for(f"{BASE}/state", lambda m: m.retain, timeout=5).json()["paused"]
            outcomes.append((live, retained))
        assert outcomes == [(True, True)] * 20
        assert daemon.running()
    assert "command(s) dropped" in daemon.output()  # the bursts did overflow the inbox, and it was said


def test_a_burst_of_5000_mixed_commands_ending_on_policy_match(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    rng = random.Random(26)
    with Subscriber(mosquitto, [f"{BASE}/state"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", timeout=STARTUP)
        outcomes = []
        for _ in range(3):
            sub.clear()
            publish(mosquitto, f"{BASE}/set/policy", "uplift")
            sub.wait_for(f"{BASE}/state", lambda m: m.json()["policy"] == "uplift", timeout=20)
            sub.clear()
            send(mosquitto, mixed_burst(rng, 5000, ("policy", "match")))
            outcomes.append(latest_state(sub, "policy", "match") and settles_on(mosquitto, "policy", "match"))
        assert outcomes == [True] * 3
        assert daemon.running()
