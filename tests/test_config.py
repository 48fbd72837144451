"""config.toml loading: the reference file, defaults, and one-line errors with exit code 78."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from moodcast import config

ROOT = Path(__file__).resolve().parents[1]


def test_reference_file_is_valid_and_shows_the_defaults():
    loaded = config.load(ROOT / "config.toml")
    defaults = config.parse({})
    loaded = dataclasses.replace(loaded, source_path=defaults.source_path)  # frozen: a copy with the other path
    assert loaded == defaults, "config.toml must document every default exactly"


@pytest.mark.parametrize("toml, message", [
    ('[mqtt]\nport = "abc"', 'config.toml: [mqtt] port: expected integer 1–65535, got "abc"'),
    ("[mqtt]\nport = 70000", "config.toml: [mqtt] port: expected integer 1–65535, got 70000"),
    ("[mqtt]\nprot = 1883", "config.toml: [mqtt] prot: unknown key"),
    ("[mood]\nsmoothing = 0", "config.toml: [mood] smoothing: expected number 0.01–1, got 0"),
    ('[camera]\nsource = "webcam"', 'config.toml: [camera] source: expected one of "picamera2"'),
    ("[camera]\nrealtime = 1", "config.toml: [camera] realtime: expected boolean, got 1"),
    ('[mqtt.tls]\nenabled = "yes"', 'config.toml: [mqtt.tls] enabled: expected boolean, got "yes"'),
    ("[nonsense]\nx = 1", "config.toml: nonsense: unknown key"),
    ("[mqtt\nport = 1", "config.toml: not valid TOML"),
])
def test_bad_values_give_one_clear_line(tmp_path, toml, message):
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert str(err.value).startswith(message.replace("config.toml", str(path)) if "TOML" in message else message)


def test_cli_exits_78_with_one_line_and_no_traceback(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[mqtt]\nport = "abc"\n')
    result = subprocess.run([sys.executable, "-m", "moodcast.cli", "check-config", "-c", str(path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 78
    assert result.stderr.strip() == 'moodcast: config.toml: [mqtt] port: expected integer 1–65535, got "abc"'
    assert "Traceback" not in result.stderr


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match="no such file"):
        config.load(tmp_path / "absent.toml")


def test_a_device_id_that_sanitising_would_change_is_refused():  # the cases: test_topics.py
    with pytest.raises(config.ConfigError, match=r'\[mqtt\] device_id: .*cut down to "living_room__1"'):
        config.parse({"mqtt": {"device_id": "living room/#1"}})


def test_check_config_reports_every_part(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    path = tmp_path / "config.toml"
    path.write_text(f'[spotify]\nclient_id = "abc"\nclient_secret_file = "{secret}"\n'
                    f'[state]\ndir = "{tmp_path / "state"}"\n')
    result = subprocess.run([sys.executable, "-m", "moodcast.cli", "check-config", "-c", str(path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{path}: OK" in result.stdout
    assert "model" in result.stdout and "int8" in result.stdout
    assert "spotify  not authorised yet: run moodcast spotify-auth" in result.stdout
    assert "youtube  off (no API key)" in result.stdout
    secret.chmod(0o644)
    result = subprocess.run([sys.executable, "-m", "moodcast.cli", "check-config", "-c", str(path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 78 and "world-readable" in result.stderr
