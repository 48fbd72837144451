"""Hostile or broken settings are refused when the configuration is loaded: one line naming the
file and key, exit 78, no traceback, and `run` never gets as far as the broker or the camera."""

import os
from types import SimpleNamespace

import pytest

from tests.daemon_process import run_cli, write_config
from tests.media import SAMPLES


def refused(tmp_path, toml: str | bytes, command: str = "check-config"):
    path = tmp_path / "custom.toml"
    path.write_bytes(toml if isinstance(toml, bytes) else toml.encode())
    result = run_cli(command, "-c", str(path), timeout=600)
    assert result.returncode == 78, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "custom.toml: " in lines[0], lines  # the file's real name, and the key
    return lines[0]


@pytest.mark.parametrize("key, value", [
    ("host", ""), ("client_id", "c" * 200), ("username", "admin\nroot"),
])
def test_mqtt_names_that_cannot_go_on_the_wire(tmp_path, key, value):
    toml_value = value.replace("\n", "\\n")
    line = refused(tmp_path, f'[mqtt]\n{key} = "{toml_value}"\n')
    assert line.startswith(f"moodcast: custom.toml: [mqtt] {key}: expected")
    assert len(line) < 300


HOSTILE_PREFIXES = [
    ("discovery_prefix", "homeassistant/", '"/"'),  # once passed check-config, then run died with a traceback
    ("discovery_prefix", "/homeassistant", '"/"'),
    ("prefix", "moodcast/", '"/"'),
    ("prefix", "/", '"/"'),
    ("prefix", "home//moods", '"/"'),
    ("prefix", "home/+", "wildcards"),
    ("prefix", "a/#/b", "wildcards"),
    ("discovery_prefix", "+", "wildcards"),
    ("prefix", "mood\\u0000cast", "control characters"),  # NUL, written as a TOML escape
    ("prefix", "", "not empty"),
    ("discovery_prefix", "", "not empty"),
    ("prefix", "m" * 129, "128 bytes"),
    ("discovery_prefix", "ü" * 65, "128 bytes"),  # 65 characters, 130 bytes
]


@pytest.mark.parametrize("key, value, why", HOSTILE_PREFIXES)
def test_check_config_and_run_refuse_a_hostile_topic_prefix_alike(tmp_path, key, value, why):
    """moodcast.topics.prefix_problem is the one rule, applied when the configuration is loaded: both
    commands stop with the same line before anything touches the broker or the camera."""
    toml = f'[mqtt]\n{key} = "{value}"\n'
    lines = {command: refused(tmp_path, toml, command) for command in ("check-config", "run")}
    assert lines["check-config"] == lines["run"]
    assert lines["run"].startswith(f"moodcast: custom.toml: [mqtt] {key}: expected a topic prefix")
    assert why in lines["run"] and len(lines["run"]) < 300


def test_check_config_and_run_refuse_a_prefix_that_is_not_utf8_alike(tmp_path):
    toml = b'[mqtt]\nprefix = "mood\xffcast"\n'
    lines = {command: refused(tmp_path, toml, command) for command in ("check-config", "run")}
    assert lines["check-config"] == lines["run"]
    assert "cannot read" in lines["run"] and "utf-8" in lines["run"]


@pytest.mark.parametrize("camera, key", [
    ('device = "99999999999999999999"', "device"),
    ('device = "²"', "device"),
    ('source = "gstreamer"\npipeline = "videotestsrc ! autovideosink"', "pipeline"),
    ('source = "gstreamer"', "pipeline"),
])
def test_camera_settings_that_cannot_open_anything(tmp_path, camera, key):
    assert refused(tmp_path, f"[camera]\n{camera}\n").startswith(f"moodcast: custom.toml: [camera] {key}: ")


def test_parser_edge_cases_stay_one_short_line(tmp_path):
    deep = refused(tmp_path, "x = " + "[" * 3000 + "]" * 3000 + "\n")
    assert deep == f"moodcast: {tmp_path / 'custom.toml'}: not valid TOML: nested too deeply"
    long_value = refused(tmp_path, '[mqtt]\nport = "' + "9" * 200_000 + '"\n')
    assert len(long_value) < 300 and "(200002 characters)" in long_value
    uri = refused(tmp_path, '[recommendations.moods.happy]\nspotify_uris = ["nope"]\n')
    assert uri.startswith("moodcast: custom.toml: [recommendations.moods.happy] spotify_uris: ")
    uplift = refused(tmp_path, '[recommendations.moods.sad]\nuplift = ["ecstatic"]\n')
    assert uplift.startswith("moodcast: custom.toml: [recommendations.moods.sad] uplift: ")


def test_a_device_file_as_config_is_refused_not_read_forever():
    from tests.daemon_process import run_cli
    result = run_cli("check-config", "-c", "/dev/zero", timeout=600)
    assert result.returncode == 78
    assert result.stderr.strip() == ("moodcast: /dev/zero: not a regular file (a character device); "
                                     "name the configuration file itself")


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_fifo_as_config_is_refused_not_waited_on(tmp_path, command):
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)  # nobody ever writes to it: opening it for reading would wait for ever
    result = run_cli(command, "-c", str(fifo), timeout=300)
    assert result.returncode == 78
    assert result.stderr.strip() == f"moodcast: {fifo}: not a regular file (a FIFO); name the configuration file itself"


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("key", ["ca_file", "cert_file"])
def test_a_fifo_as_a_tls_file_is_refused_not_waited_on(tmp_path, command, key):
    fifo = tmp_path / "tls.pem"
    os.mkfifo(fifo)
    config = write_config(tmp_path / "config.toml", SimpleNamespace(host="127.0.0.1", port=8883),
                          camera={"source": "replay", "path": str(SAMPLES / "01_astronaut.png")},
                          **{"mqtt.tls": {"enabled": True, key: str(fifo)}})
    result = run_cli(command, "-c", str(config), timeout=300)
    assert result.returncode == 78, result.stderr
    assert f"[mqtt.tls] {key}: {fifo}: not a regular file (a FIFO)" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
