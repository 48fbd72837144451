"""Connections that fail before CONNACK are logged once with their cause, then retried quietly:
plain MQTT to a real TLS Mosquitto, and a port that accepts and never answers."""

import socket
import threading
import time
from types import SimpleNamespace

from tests.daemon_process import STARTUP, write_config
from tests.media import SAMPLES
from tests.test_cli import Lines

LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}


def connect_problems(config, retries_s: float = 15) -> list[str]:
    """The daemon's 'cannot connect' lines: the first, and any within `retries_s` of retrying after it."""
    daemon = Lines("run", "-c", str(config))
    try:
        daemon.wait_for(lambda lines: any("cannot connect" in line for line in lines), timeout=STARTUP)
        time.sleep(retries_s)  # reconnect_max_s is 1 s: many retries
        lines = list(daemon.lines)
    finally:
        daemon.stop()
    assert not any("Traceback" in line for line in lines), lines
    return [line for line in lines if "cannot connect" in line]


def test_plain_mqtt_to_a_tls_port_says_tls_expected(tmp_path, mosquitto_tls):
    config = write_config(tmp_path / "config.toml", mosquitto_tls, camera=LOOP,
                          mqtt={"username": mosquitto_tls.username,
                                "password_file": mosquitto_tls.client_password_file})
    problems = connect_problems(config)
    assert len(problems) == 1, problems  # said once, then retried quietly
    assert "the port expects TLS: set [mqtt.tls] enabled = true" in problems[0]


def test_a_port_that_never_answers_is_named(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in range(64)], daemon=True).start()
    broker = SimpleNamespace(host="127.0.0.1", port=silent.getsockname()[1])
    try:
        problems = connect_problems(write_config(tmp_path / "config.toml", broker, camera=LOOP), retries_s=20)
    finally:
        silent.close()
    assert len(problems) == 1, problems
    assert "sent no CONNACK within 5 s: not an MQTT broker?" in problems[0]


def test_two_daemons_with_one_client_id_are_named_as_such(tmp_path, mosquitto):
    configs = [write_config(tmp_path / f"config{i}.toml", mosquitto, camera=LOOP,
                            state={"dir": str(tmp_path / f"s{i}")})
               for i in (1, 2)]
    daemons = [Lines("run", "-c", str(config)) for config in configs]
    try:
        for daemon in daemons:
            daemon.wait_for(lambda lines: any("running:" in line for line in lines), timeout=STARTUP)
        time.sleep(20)  # they take the session from each other every reconnect
        lines = [line for daemon in daemons for line in daemon.lines]
    finally:
        for daemon in daemons:
            daemon.stop()
    taken = [line for line in lines if "is another client using client_id moodcast-testcam" in line]
    assert taken, lines
    assert len(taken) <= 2 * 2  # once a minute per daemon, not once per flap
