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


# -- hostile secret files: each is refused with one line, and check-config exits 78 ---------------

def _fifo(path):
    os.mkfifo(path, 0o600)
    return path


def _dir(path):
    path.mkdir(mode=0o700)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: (p.symlink_to("/etc/shadow"), p)[1], "is a symbolic link"),
    (lambda p: (p.symlink_to(secret_file(p.with_name("real"), "s3cret")), p)[1], "is a symbolic link"),
    (_dir, "is not a regular file"),
    (_fifo, "is not a regular file"),
    (lambda p: (p.write_bytes(b"\xff\xfepass"), p.chmod(0o600), p)[2], "is not UTF-8 text"),
    (lambda p: secret_file(p, "line one\nroot:x:0:0:root:/root:/bin/bash\n"), "must be one line"),
    (lambda p: secret_file(p, "x" * 70_000), "is larger than 4096 bytes"),
])
def test_hostile_secret_files_are_refused(env, tmp_path, make, message):
    path = make(tmp_path / "pw")
    with pytest.raises(SecretError) as err:
        read_secret("mqtt_password", path)
    assert str(err.value).startswith(f"{path}: secret file") and message in str(err.value)


def test_a_symlinked_systemd_credential_is_still_read(env, tmp_path):
    creds = _dir(tmp_path / "credentials")
    (creds / "mqtt_password").symlink_to(secret_file(tmp_path / "pw", "s3cret"))
    env.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert read_secret("mqtt_password") == "s3cret"


def test_a_multi_line_environment_secret_is_refused(env):
    env.setenv("MOODCAST_MQTT_PASSWORD", "a\nb")
    with pytest.raises(SecretError, match="MOODCAST_MQTT_PASSWORD must be one line"):
        read_secret("mqtt_password")


def test_check_config_exits_78_for_a_password_file_linked_to_shadow(tmp_path):
    from tests.daemon_process import run_cli, write_config
    link = tmp_path / "password"
    link.symlink_to("/etc/shadow")
    config = write_config(tmp_path / "config.toml", None,
                          mqtt={"enabled": True, "username": "moodcast", "password_file": str(link)})
    result = run_cli("check-config", "-c", str(config), timeout=600)
    assert result.returncode == 78, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"moodcast: {link}: secret file is a symbolic link; "
                                                  "name the file itself (or use a systemd credential)"]
