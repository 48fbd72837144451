"""`moodcast mqtt-cleanup` against a real Mosquitto: a refused login is one line, and Home Assistant's
entities go before their state topics."""

import time

from bench.mosquitto import Subscriber, publish
from tests.daemon_process import run_cli, write_config

BASE = "moodcast/testcam"


def test_a_refused_login_is_one_line(tmp_path, mosquitto_tls):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    config = write_config(tmp_path / "config.toml", mosquitto_tls,
                          mqtt={"username": mosquitto_tls.username, "password_file": str(wrong)},
                          **{"mqtt.tls": {"enabled": True, "ca_file": mosquitto_tls.ca_file}})
    result = run_cli("mqtt-cleanup", "-c", str(config), timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"moodcast: broker {mosquitto_tls.host}:{mosquitto_tls.port} refused the "
                                     "connection: Not authorized")


def test_entities_are_removed_before_their_state_topics(tmp_path, mosquitto):
    config = write_config(tmp_path / "config.toml", mosquitto)
    publish(mosquitto, f"{BASE}/state", '{"mood": "happy"}', retain=True)
    with Subscriber(mosquitto, [f"{BASE}/#", "homeassistant/#"]) as sub:
        sub.wait_for(f"{BASE}/state")
        sub.clear()
        arrivals = []
        sub.client.on_message = lambda c, u, m: arrivals.append((time.monotonic(), m.topic, m.payload))
        result = run_cli("mqtt-cleanup", "-c", str(config), timeout=600)
        assert result.returncode == 0, result.stderr
        time.sleep(1)
    discovery = [t for t, topic, payload in arrivals if topic.startswith("homeassistant/") and payload == b""]
    state = [t for t, topic, payload in arrivals if topic.startswith(BASE) and payload == b""]
    assert discovery and state and max(discovery) + 0.5 < min(state)
