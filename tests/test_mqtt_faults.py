"""The daemon's MQTT link against a real Mosquitto: TLS + auth, wrong credentials, HA restarts, cleanup."""

import os
import signal
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.mosquitto import Subscriber, make_ca, publish
from tests.daemon_process import STOP, run_cli, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}


def tls_config(tmp_path, broker, password_file, ca_file=None, **mqtt):
    return write_config(tmp_path / "config.toml", broker, camera=LOOP,
                        mqtt={"username": broker.username, "password_file": str(password_file), **mqtt},
                        **{"mqtt.tls": {"enabled": True, "ca_file": str(ca_file or broker.ca_file)}})


def test_tls_and_password_end_to_end(tmp_path, mosquitto_tls, daemon_process):
    config = tls_config(tmp_path, mosquitto_tls, mosquitto_tls.client_password_file)
    with Subscriber(mosquitto_tls, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        assert sub.wait_for(f"{BASE}/availability", timeout=30).text == "online"
        assert sub.wait_for(f"{BASE}/state", timeout=10).json()["schema"] == 1
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(5) == 0
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "offline", timeout=3)


def test_wrong_password_is_one_clear_error_and_retried(tmp_path, mosquitto_tls, daemon_process):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    config = tls_config(tmp_path, mosquitto_tls, wrong, reconnect_min_s=0.2, reconnect_max_s=1.0)
    with daemon_process(config) as daemon:
        time.sleep(6)  # several reconnect attempts
        assert daemon.running()
        out = daemon.output()
    refusals = [line for line in out.splitlines() if "refused the connection" in line]
    assert len(refusals) == 1, out  # said once, retried quietly
    assert "Not authorized" in refusals[0]
    assert "Traceback" not in out
    assert mosquitto_tls.log_text().count("not authorised") >= 3  # it really kept retrying


def test_untrusted_broker_certificate_is_diagnosed(tmp_path, mosquitto_tls, daemon_process):
    other_ca, _ = make_ca(tmp_path, "other")
    config = tls_config(tmp_path, mosquitto_tls, mosquitto_tls.client_password_file, ca_file=other_ca)
    with daemon_process(config) as daemon:
        time.sleep(4)
        assert daemon.running()
        out = daemon.output()
    errors = [line for line in out.splitlines() if "cannot connect" in line]
    assert len(errors) == 1 and "TLS failed: CERTIFICATE_VERIFY_FAILED" in errors[0], out


def test_world_readable_password_file_is_refused(tmp_path, mosquitto_tls):
    exposed = tmp_path / "password"
    exposed.write_text(mosquitto_tls.password)
    os.chmod(exposed, 0o644)
    config = tls_config(tmp_path, mosquitto_tls, exposed)
    result = run_cli("run", "-c", str(config))
    assert result.returncode == 78
    assert result.stderr.strip().endswith(f"{exposed}: secret file is world-readable; run: chmod 600 {exposed}")
    assert "Traceback" not in result.stderr


def test_home_assistant_restart_gets_discovery_and_state_again(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/state", "homeassistant/+/moodcast_testcam/+/config"]) as sub, \
            daemon_process(config):
        sub.wait_for(f"{BASE}/state", timeout=30)
        discovery = [t for t in sub.messages if t.startswith("homeassistant/")]
        assert len(discovery) >= 6
        sub.clear()
        publish(mosquitto, "homeassistant/status", "online")
        for topic in discovery:
            sub.wait_for(topic, timeout=5)
        sub.wait_for(f"{BASE}/state", timeout=5)


def test_mqtt_cleanup_removes_entities_and_retained_topics(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto,
                          camera={**LOOP, "realtime": False, "loop": False, "image_seconds": 1.0})
    with daemon_process(config) as daemon:
        assert daemon.wait(60) == 0
    with Subscriber(mosquitto, [f"{BASE}/#", "homeassistant/#"]) as sub:
        sub.wait_for(f"{BASE}/state", timeout=5)
    result = run_cli("mqtt-cleanup", "-c", str(config))
    assert result.returncode == 0, result.stderr
    with Subscriber(mosquitto, [f"{BASE}/#", "homeassistant/#"]) as sub:
        time.sleep(1)
        assert sub.messages == {}  # nothing retained is left


def test_mqtt_5(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP, mqtt={"protocol": "5"})
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config):
        assert sub.wait_for(f"{BASE}/availability", timeout=30).text == "online"
        assert sub.wait_for(f"{BASE}/state", timeout=10).json()["mood"]


def test_a_flood_of_home_assistant_births_is_logged_once_a_minute(tmp_path, mosquitto, daemon_process):
    """Whoever may publish homeassistant/status can make the daemon re-announce itself at will: it
    does (Home Assistant needs it), but says so at most once a minute (10,000 births wrote 3,698 lines)."""
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/state"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/state", timeout=30)
        client = mosquitto.configure(mqtt.Client(CallbackAPIVersion.VERSION2))
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        for info in [client.publish("homeassistant/status", "online", qos=1) for _ in range(2000)]:
            info.wait_for_publish(30)
        client.disconnect()
        client.loop_stop()
        sub.clear()
        publish(mosquitto, "homeassistant/status", "online")
        sub.wait_for(f"{BASE}/state", timeout=10)  # the last birth was still answered
        assert daemon.running()
        daemon.signal(signal.SIGTERM)
        daemon.wait(STOP)
    assert daemon.output().count("Home Assistant came online") == 1
