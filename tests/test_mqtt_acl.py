"""A broker whose ACL refuses the daemon: under MQTT 5 it says so in PUBACK and SUBACK reason codes.
The daemon logs the first refusal per topic with its reason, counts every one (stats `mqtt_denied`),
and offers a refused retained topic or subscription again, quietly, until the ACL allows it."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path

import pytest

from bench.mosquitto import Mosquitto, Subscriber, publish
from moodcast.config import MqttConfig
from moodcast.mqtt import link as link_module
from moodcast.mqtt import payloads
from moodcast.mqtt.link import MqttLink
from moodcast.service import settings
from moodcast.topics import Topics
from tests.daemon_process import STARTUP, STOP, run_cli, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}
# what anonymous clients (the daemon and the test's own) may do: everything of the daemon's but write events
NO_EVENTS = "\n".join([*(f"topic readwrite {BASE}/{kind}" for kind in [*payloads.TOPICS, "set/#"] if kind != "event"),
                       f"topic read {BASE}/event", "topic readwrite homeassistant/#"]) + "\n"


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_refused_events_are_logged_once_and_counted(tmp_path, daemon_process):
    broker = Mosquitto(tmp_path / "mosquitto", acl=NO_EVENTS).start()
    try:
        config = write_config(tmp_path / "config.toml", broker, camera=LOOP,
                              mqtt={"protocol": "5", "stats_interval_s": 1.0})
        with Subscriber(broker, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
            sub.wait_for(f"{BASE}/availability", lambda m: m.text == "online", timeout=STARTUP)
            for policy in ("match", "uplift", "off", "match", "uplift"):
                publish(broker, f"{BASE}/set/policy", policy)
                sub.wait_for(f"{BASE}/state", lambda m, p=policy: m.json()["policy"] == p, timeout=20)
            sub.clear()
            stats = sub.wait_for(f"{BASE}/stats", lambda m: m.json()["mqtt_denied"] >= 5, timeout=30).json()
            assert f"{BASE}/event" not in sub.messages  # the broker kept them out; the daemon counted them
            assert stats["mqtt_dropped"] == 0, stats  # refused is not dropped: each one reached the broker
            assert daemon.running()
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(STOP) == 0
            refusals = [line for line in daemon.output().splitlines() if "refused a publish" in line]
    finally:
        broker.kill()
    assert len(refusals) == 1, refusals
    assert f"refused a publish to {BASE}/event: Not authorized (reason code 135)" in refusals[0]


def retained(broker: Mosquitto, topic: str) -> bytes | None:
    with Subscriber(broker, [topic]) as late:
        time.sleep(0.3)  # retained messages arrive right after SUBACK
        return next((m.payload for m in late.messages.get(topic, []) if m.retain), None)


@pytest.fixture
def quick_retry(monkeypatch):
    monkeypatch.setattr(link_module, "RETRY_REFUSED_S", 0.3)
    monkeypatch.setattr("moodcast.mqtt.outbox.RETRY_REFUSED_S", 0.3)


def in_process_link(broker: Mosquitto, protocol: str) -> MqttLink:
    cfg = MqttConfig(host=broker.host, port=broker.port, protocol=protocol, device_id="testcam",
                     reconnect_min_s=0.2, reconnect_max_s=1.0)
    return MqttLink(cfg, Topics("moodcast", "testcam"), on_command=lambda message: None)


@pytest.mark.parametrize("protocol, reason", [("5", "Not authorized (reason code 135)"),
                                              ("3.1.1", "Unspecified error (reason code 128)")])
def test_a_refused_command_subscription_is_said_once_and_asked_for_again(tmp_path, caplog, quick_retry,
                                                                         protocol, reason):
    """Mosquitto 2.0's ACL file never refuses a subscription; its dynamic-security plugin does."""
    deaf = {"defaultACLAccess": {"publishClientSend": True, "publishClientReceive": True, "subscribe": True,
                                 "unsubscribe": True},
            "clients": [], "groups": [{"groupname": "anonymous", "roles": [{"rolename": "deaf"}]}],
            "roles": [{"rolename": "deaf", "acls": [{"acltype": "subscribePattern", "topic": f"{BASE}/set/#",
                                                     "priority": 0, "allow": False}]}],
            "anonymousGroup": "anonymous"}
    broker = Mosquitto(tmp_path / "mosquitto", dynsec=deaf).start()
    link = in_process_link(broker, protocol)
    caplog.set_level(logging.ERROR, logger="moodcast.mqtt")
    try:
        link.start()
        wait_until(lambda: link.denied >= 3, 20, "the refused subscription is asked for again")
    finally:
        link.stop()
        broker.kill()
    lines = [r.getMessage() for r in caplog.records if "refused the subscription" in r.getMessage()]
    assert len(lines) == 1, lines  # said once; then counted
    assert lines[0].startswith(f"the broker refused the subscription to {BASE}/set/#: {reason}; commands cannot "
                               "arrive")


def test_a_refused_retained_topic_reaches_the_broker_once_the_acl_allows_it(tmp_path, caplog, quick_retry):
    broker = Mosquitto(tmp_path / "mosquitto", acl=NO_EVENTS.replace(f"topic readwrite {BASE}/state\n", "")).start()
    link = in_process_link(broker, "5")
    caplog.set_level(logging.ERROR, logger="moodcast.mqtt")
    try:
        link.start()
        assert link.connected.wait(20)
        link.publish_raw(f"{BASE}/state", b'{"mood": "happy"}')
        wait_until(lambda: link.denied >= 2, 20, "the refused state is offered again")
        broker.conf_file.parent.joinpath("acl").write_text(NO_EVENTS)  # the admin fixes the ACL...
        broker.process.send_signal(signal.SIGHUP)  # ...and reloads it
        wait_until(lambda: retained(broker, f"{BASE}/state") == b'{"mood": "happy"}', 20,
                   "the state, never published again, is at the broker once the ACL allows it")
    finally:
        link.stop()
        broker.kill()
    lines = [r.getMessage() for r in caplog.records if "refused a publish" in r.getMessage()]
    assert len(lines) == 1 and "offered again every 0.3 s" in lines[0], lines


def documented_acl() -> str:
    """The reference ACL of docs/mqtt.md, as a user would copy it."""
    text = (Path(__file__).parents[1] / "docs" / "mqtt.md").read_text()
    section = text.split("## Securing the broker", 1)[1]
    return section.split("```text\n", 1)[1].split("```", 1)[0]


def test_the_documented_acl_lets_the_daemon_and_its_cleanup_do_their_whole_job(tmp_path, daemon_process):
    """Under MQTT 5 every refusal would be logged: none may be. And the cleanup must see the daemon online."""
    acl = documented_acl()
    user = acl.splitlines()[0].removeprefix("user ")
    broker = Mosquitto(tmp_path / "mosquitto", username=user, password="s3cret", acl=acl).start()
    base = "moodcast/livingroom"
    try:
        config = write_config(tmp_path / "config.toml", broker, camera=LOOP,
                              mqtt={"device_id": "livingroom", "username": user, "protocol": "5",
                                    "password_file": broker.client_password_file, "stats_interval_s": 1.0})
        with Subscriber(broker, [f"{base}/availability", f"{base}/set/#"]) as sub, \
                daemon_process(config) as daemon:
            sub.wait_for(f"{base}/availability", lambda m: m.text == "online", timeout=STARTUP)
            publish(broker, f"{base}/set/policy", "uplift")
            publish(broker, "homeassistant/status", "online")  # Home Assistant restarted: discovery again
            time.sleep(3)  # state, stats, events and discovery all go out by then
            refused = run_cli("mqtt-cleanup", "-c", str(config), timeout=600)
            assert refused.returncode == 1 and "the daemon is online" in refused.stderr, refused.stderr
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(STOP) == 0
            output = daemon.output()
    finally:
        broker.kill()
    assert "refused" not in output, [line for line in output.splitlines() if "refused" in line]
    saved = json.loads((tmp_path / "state" / settings.FILE_NAME).read_text())
    assert saved["policy"] == "uplift"  # the command arrived and was acted on
