"""The test broker itself: retained delivery, restarts, TLS with a password, and refusals."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.mosquitto import Mosquitto, Subscriber, free_port, make_ca, publish

NOT_AUTHORIZED = 135  # what mosquitto 2.0 answers to a bad or missing password (MQTT 3.1.1 CONNACK 5)


def connect_result(broker: Mosquitto, *, username=None, password=None, ca_file=None,
                   protocol=mqtt.MQTTv311, timeout=5.0):
    """The reason code of the CONNACK, or None when none came."""
    got, done = {}, threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    if ca_file:
        client.tls_set(ca_certs=ca_file)
    if username is not None:
        client.username_pw_set(username, password)

    def on_connect(c, userdata, flags, reason_code, properties):
        got["rc"] = reason_code
        done.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port, keepalive=10)
    deadline = time.monotonic() + timeout
    while not done.is_set() and time.monotonic() < deadline:
        client.loop(0.05)  # no background thread: it would sleep a reconnect delay after a refusal
    client.disconnect()
    return got.get("rc")


def accepts_connections(broker: Mosquitto) -> bool:
    try:
        with socket.create_connection((broker.host, broker.port), timeout=1):
            return True
    except OSError:
        return False


def retained(broker: Mosquitto, topic: str) -> list:
    """Retained messages a new subscriber gets on `topic` (a sentinel marks the end of the burst)."""
    with Subscriber(broker, [topic, "sentinel"]) as sub:
        publish(broker, "sentinel", b"")
        sub.wait_for("sentinel")
        return [m for m in sub.messages.get(topic, []) if m.retain]


# -- plain broker ------------------------------------------------------------------------------

def test_fixture_listens_on_loopback_not_1883(mosquitto):
    assert mosquitto.host == "127.0.0.1" and mosquitto.port != 1883 and mosquitto.running
    assert free_port() != 1883


def test_retained_message_reaches_a_late_subscriber(mosquitto):
    publish(mosquitto, "moodcast/test/state", b'{"mood": "happy"}', retain=True)
    publish(mosquitto, "moodcast/test/event", b'{"type": "face_lost"}', retain=False)
    with Subscriber(mosquitto, ["moodcast/test/#"]) as late:
        message = late.wait_for("moodcast/test/state")
        assert message.retain and message.json() == {"mood": "happy"} and message.qos == 1
    assert retained(mosquitto, "moodcast/test/event") == []


def test_live_messages_arrive_not_retained_and_predicates_filter(mosquitto):
    with Subscriber(mosquitto, ["a/b"]) as sub:
        for n in range(3):
            publish(mosquitto, "a/b", str(n), retain=True)
        message = sub.wait_for("a/b", lambda m: m.text == "2")
        assert not message.retain  # a retained publish is delivered live with retain=0
        with pytest.raises(AssertionError, match="no matching message on 'a/b'"):
            sub.wait_for("a/b", lambda m: m.text == "3", timeout=0.3)


def test_stop_and_start_again_on_the_same_port(mosquitto):
    port = mosquitto.port
    publish(mosquitto, "x/retained", b"1", retain=True)
    mosquitto.stop()
    assert not mosquitto.running and not accepts_connections(mosquitto)
    mosquitto.start()
    assert mosquitto.port == port and accepts_connections(mosquitto)
    assert retained(mosquitto, "x/retained") == []  # no persistence by default: a clean broker


def test_kill_then_start_again(mosquitto):
    mosquitto.kill()
    assert not mosquitto.running and not accepts_connections(mosquitto)
    mosquitto.start()
    assert connect_result(mosquitto).value == 0


def test_persistence_keeps_retained_messages_across_a_restart(tmp_path):
    broker = Mosquitto(tmp_path / "persistent", persistence=True).start()
    try:
        publish(broker, "x/state", b"kept", retain=True)
        broker.restart()
        assert [m.payload for m in retained(broker, "x/state")] == [b"kept"]
    finally:
        broker.kill()


def test_last_will_arrives_when_a_client_dies(mosquitto):
    script = (
        "import sys, time, paho.mqtt.client as m\n"
        "from paho.mqtt.enums import CallbackAPIVersion as V\n"
        "c = m.Client(V.VERSION2, client_id='doomed')\n"
        "c.will_set('dev/availability', 'offline', qos=1, retain=True)\n"
        f"c.connect('127.0.0.1', {mosquitto.port}, keepalive=30)\n"
        "c.loop_start()\n"
        "c.publish('dev/availability', 'online', qos=1, retain=True).wait_for_publish(5)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    with Subscriber(mosquitto, ["dev/availability"]) as sub:
        client = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        try:
            assert client.stdout.readline() == b"up\n"
            sub.wait_for("dev/availability", lambda m: m.text == "online")
            client.kill()  # no DISCONNECT packet: the broker must publish the will
            sub.wait_for("dev/availability", lambda m: m.text == "offline", timeout=5)
        finally:
            client.kill()
            client.wait()
    assert [m.text for m in retained(mosquitto, "dev/availability")] == ["offline"]


def test_a_broker_that_cannot_start_says_why(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        broker = Mosquitto(tmp_path / "busy", port=busy.getsockname()[1])
        with pytest.raises(RuntimeError, match="mosquitto exited with"):
            broker.start(timeout=5)


# -- TLS and passwords ---------------------------------------------------------------------------

def test_tls_with_password_works_end_to_end(mosquitto_tls):
    assert mosquitto_tls.tls and mosquitto_tls.ca_file and mosquitto_tls.username and mosquitto_tls.password
    with Subscriber(mosquitto_tls, ["secure/#"]) as sub:
        publish(mosquitto_tls, "secure/state", b"ok", retain=True)
        assert sub.wait_for("secure/state").payload == b"ok"
    assert [m.payload for m in retained(mosquitto_tls, "secure/state")] == [b"ok"]


def test_client_password_file_holds_the_password(mosquitto_tls):
    from pathlib import Path
    secret = Path(mosquitto_tls.client_password_file)
    assert secret.stat().st_mode & 0o777 == 0o600
    rc = connect_result(mosquitto_tls, username=mosquitto_tls.username, password=secret.read_text().strip(),
                        ca_file=mosquitto_tls.ca_file)
    assert rc is not None and rc.value == 0


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
@pytest.mark.parametrize("credentials", [("moodcast", "wrong"), ("nobody", "whatever"), (None, None)])
def test_bad_credentials_are_refused_as_not_authorized(mosquitto_tls, protocol, credentials):
    username, password = credentials
    if username == "moodcast":
        username = mosquitto_tls.username
    rc = connect_result(mosquitto_tls, username=username, password=password, ca_file=mosquitto_tls.ca_file,
                        protocol=protocol)
    assert rc is not None and rc.is_failure and rc.value == NOT_AUTHORIZED, rc
    assert "not authorised" in mosquitto_tls.log_text()


def test_a_certificate_from_another_ca_fails_tls(mosquitto_tls, tmp_path):
    other_ca, _ = make_ca(tmp_path, "other")
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    mosquitto_tls.configure(client, ca_file=str(other_ca))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        client.connect(mosquitto_tls.host, mosquitto_tls.port)


def test_plain_mqtt_gets_no_answer_on_the_tls_port(mosquitto_tls):
    assert connect_result(mosquitto_tls, username=mosquitto_tls.username, password=mosquitto_tls.password,
                          timeout=1.5) is None
