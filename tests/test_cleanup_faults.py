"""`moodcast mqtt-cleanup` against a real Mosquitto: a refused login is one line, Home Assistant's
entities go before their state topics, and a running daemon is not cleaned up without --force."""

import signal
import time

from bench.mosquitto import Subscriber, publish
from tests.daemon_process import STARTUP, STOP, run_cli, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}


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


def test_a_running_daemon_is_not_cleaned_up_without_force(tmp_path, mosquitto, daemon_process):
    """A daemon that is online publishes its state again within seconds: the cleanup would not last."""
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        sub.wait_for(f"{BASE}/availability", lambda m: m.text == "online", timeout=STARTUP)
        sub.wait_for(f"{BASE}/state")
        refused = run_cli("mqtt-cleanup", "-c", str(config), timeout=600)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert refused.stderr.strip() == (f"moodcast: the daemon is online ({BASE}/availability says online) and "
                                          "would publish its entities and state again: stop it first (sudo systemctl "
                                          "stop moodcast), or add --force if that is stale")
        assert not [m for msgs in sub.messages.values() for m in msgs if m.payload == b""]  # nothing was cleared
        forced = run_cli("mqtt-cleanup", "--force", "-c", str(config), timeout=600)
        assert forced.returncode == 0, forced.stderr
        sub.wait_for(f"{BASE}/state", lambda m: m.payload == b"")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
    stopped = run_cli("mqtt-cleanup", "-c", str(config), timeout=600)  # its availability now says offline
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines()[-1].startswith("removed ")
