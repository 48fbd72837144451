"""Secrets: systemd credentials first, then a file named in config.toml, then the environment."""

from __future__ import annotations

import os

import pytest

from moodcast.secrets import SecretError, read_secret


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("MOODCAST_MQTT_PASSWORD", raising=False)
    return monkeypatch


def secret_file(path, value, mode=0o600):
    path.write_text(value)
    path.chmod(mode)
    return path


def test_from_credentials_directory(env, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    secret_file(creds / "mqtt_password", "from-systemd\n", 0o400)  # systemd hands them out read-only
    env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    env.setenv("MOODCAST_MQTT_PASSWORD", "from-env")
    other = secret_file(tmp_path / "pw", "from-file")
    assert read_secret("mqtt_password", other) == "from-systemd"


def test_credentials_directory_without_that_credential_falls_through(env, tmp_path):
    env.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # holds other credentials only
    assert read_secret("mqtt_password", secret_file(tmp_path / "pw", "from-file")) == "from-file"


def test_empty_credential_counts_as_not_set(env, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    secret_file(creds / "mqtt_password", "", 0o400)  # the installer's placeholder, never filled in
    env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    env.setenv("MOODCAST_MQTT_PASSWORD", "from-env")
    assert read_secret("mqtt_password") == "from-env"


def test_from_file(env, tmp_path):
    env.setenv("MOODCAST_MQTT_PASSWORD", "from-env")
    assert read_secret("mqtt_password", secret_file(tmp_path / "pw", "  s3cret \n")) == "s3cret"


def test_from_environment(env):
    env.setenv("MOODCAST_MQTT_PASSWORD", " from-env ")
    assert read_secret("mqtt_password") == "from-env"


def test_not_configured_is_none(env):
    assert read_secret("mqtt_password") is None


@pytest.mark.parametrize("mode", [0o644, 0o604])
def test_world_readable_file_is_refused(env, tmp_path, mode):
    path = secret_file(tmp_path / "pw", "s3cret", mode)
    with pytest.raises(SecretError) as err:
        read_secret("mqtt_password", path)
    assert str(err.value) == f"{path}: secret file is world-readable; run: chmod 600 {path}"


def test_world_readable_credential_is_refused_too(env, tmp_path):
    secret_file(tmp_path / "mqtt_password", "s3cret", 0o644)
    env.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(SecretError, match="world-readable"):
        read_secret("mqtt_password")


def test_missing_file_is_an_error_not_silence(env, tmp_path):
    with pytest.raises(SecretError, match=r"pw: secret file does not exist"):
        read_secret("mqtt_password", tmp_path / "pw")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_unreadable_file_names_the_user(tmp_path):
    import subprocess
    import sys
    path = secret_file(tmp_path / "pw", "s3cret", 0o600)  # owned by root
    tmp_path.chmod(0o755)
    code = ("from moodcast.secrets import read_secret, SecretError\n"
            f"try: read_secret('mqtt_password', {str(path)!r})\n"
            "except SecretError as e: print(e)\n")
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                         capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.stdout.strip() == f"{path}: secret file is not readable by this user (65534)", out.stderr
