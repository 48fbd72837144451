"""Hostile or broken settings are refused when the configuration is loaded: one line naming the
file and key, exit 78, no traceback, and `run` never gets as far as the broker or the camera."""

import os
from types import SimpleNamespace

import pytest

from tests.daemon_process import run_cli, write_config
from tests.media import SAMPLES


def refused(tmp_path, toml: str, command: str = "check-config"):
    path = tmp_path / "custom.toml"
    path.write_text(toml)
    result = run_cli(command, "-c", str(path), timeout=600)
    assert result.returncode == 78, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "custom.toml: " in lines[0], lines  # the file's real name, and the key
    return lines[0]


@pytest.mark.parametrize("key, value", [
    ("prefix", ""), ("prefix", "/"), ("prefix", "home/+"), ("prefix", "a/#/b"),
    ("discovery_prefix", ""), ("discovery_prefix", "+"), ("host", ""), ("client_id", "c" * 200),
    ("username", "admin\nroot"),
])
def test_mqtt_names_that_cannot_go_on_the_wire(tmp_path, key, value):
    toml_value = value.replace("\n", "\\n")
    line = refused(tmp_path, f'[mqtt]\n{key} = "{toml_value}"\n')
    assert line.startswith(f"moodcast: custom.toml: [mqtt] {key}: expected")
    assert len(line) < 300


def test_run_refuses_a_wildcard_prefix_before_connecting(tmp_path):
    line = refused(tmp_path, '[mqtt]\nprefix = "home/+"\n', command="run")
    assert "wildcards" in line


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
