"""`moodcast check-config --online`: each configured service is tried once and gets one line that names
the cause when it fails; 0 when all work, 69 when one cannot be reached, 78 when the configuration is
refused. Real Mosquitto brokers, real spotipy and google-api-python-client against the local servers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.toml_file import write_toml
from moodcast.cli.online import Reach, attempt_all, online_exit_code
from moodcast.mqtt.embedded_broker import free_port
from tests.daemon_process import run_cli
from tests.fake_spotify import write_token
from tests.recommend_support import make_config


def secret_file(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


def config_file(tmp_path: Path, mqtt: dict | None = None, fake_spotify=None, fake_youtube=None, **sections) -> Path:
    """A config.toml for the real CLI: the broker given, Spotify and YouTube at the local servers (or off)."""
    data: dict = {"state": {"dir": str(tmp_path / "state")}, "camera": {"device": "/dev/null"},
                  "mqtt": {"device_id": "testcam", **(mqtt or {"enabled": False})},
                  "spotify": {"enabled": False}, "youtube": {"enabled": False}}
    if fake_spotify:
        data["spotify"] = {"client_id": fake_spotify.client_id, "api_url": f"{fake_spotify.url}/v1/",
                           "accounts_url": fake_spotify.url, "timeout_s": 2.0, "device_name": "Kitchen",
                           "client_secret_file": secret_file(tmp_path, "spotify_secret", fake_spotify.client_secret)}
        write_token(tmp_path / "state" / "spotify_token.json", fake_spotify.token_info())
    if fake_youtube:
        data["youtube"] = {"api_url": f"{fake_youtube.url}/", "timeout_s": 2.0,
                           "api_key_file": secret_file(tmp_path, "youtube_key", fake_youtube.api_key)}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return write_toml(tmp_path / "config.toml", data)


def online(path: Path):
    result = run_cli("check-config", "--online", "-c", str(path), timeout=600)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.split("online (each service tried once, within 5 s):\n", 1)[1].splitlines()
    return result.returncode, {line.split()[0]: line.strip() for line in lines}


# -- the broker ----------------------------------------------------------------------------------------

def broker(mosquitto, **extra) -> dict:
    return {"host": mosquitto.host, "port": mosquitto.port, **extra}


def test_everything_reachable_exits_0_with_a_line_per_service(tmp_path, mosquitto, spotify, youtube):
    code, lines = online(config_file(tmp_path, broker(mosquitto), spotify, youtube))
    assert code == 0, lines
    assert lines["mqtt"].startswith("mqtt     ok: connected (anonymous) in ")
    assert lines["spotify"] == 'spotify  ok: token refreshed; device "Kitchen" is online'
    assert lines["youtube"] == ("youtube  ok: the API key works (i18nRegions.list: 1 quota unit of the 10,000 a day)")
    assert youtube.quota_units == 10000 - 1 and youtube.searches() == []


def test_a_refused_port_is_unreachable_69(tmp_path):
    port = free_port()
    code, lines = online(config_file(tmp_path, {"host": "127.0.0.1", "port": port}))
    assert code == 69
    assert lines["mqtt"] == (f"mqtt     unreachable: broker 127.0.0.1:{port} refused the connection: nothing listens "
                             "there (broker stopped, or the wrong [mqtt] port)")
    assert lines["spotify"].startswith("spotify  off") and lines["youtube"].startswith("youtube  off")


def test_a_wrong_password_is_configuration_78(tmp_path, mosquitto_tls):
    tls = {"enabled": True, "ca_file": mosquitto_tls.ca_file}
    wrong = secret_file(tmp_path, "wrong", "not-the-password")
    path = config_file(tmp_path, broker(mosquitto_tls, username=mosquitto_tls.username, password_file=wrong),
                       **{"mqtt.tls": tls})
    code, lines = online(path)
    assert code == 78
    assert lines["mqtt"] == (f"mqtt     error: broker {mosquitto_tls.host}:{mosquitto_tls.port} refused the login "
                             f'(Not authorized): check [mqtt] username "{mosquitto_tls.username}" and the '
                             "mqtt_password secret")
    right = config_file(tmp_path, broker(mosquitto_tls, username=mosquitto_tls.username,
                                         password_file=mosquitto_tls.client_password_file), **{"mqtt.tls": tls})
    code, lines = online(right)
    assert code == 0 and lines["mqtt"].startswith(f'mqtt     ok: connected as "{mosquitto_tls.username}" over TLS in ')


def test_under_mqtt_5_the_probe_logs_in_as_the_daemon_does(tmp_path, mosquitto_tls):
    """Protocol 5 with the daemon's CONNECT properties (its Maximum Packet Size): the same verdicts."""
    tls = {"enabled": True, "ca_file": mosquitto_tls.ca_file}
    login = {"username": mosquitto_tls.username, "protocol": "5"}
    wrong = config_file(tmp_path, broker(mosquitto_tls, **login, password_file=secret_file(tmp_path, "wrong", "x")),
                        **{"mqtt.tls": tls})
    code, lines = online(wrong)
    assert code == 78 and lines["mqtt"].endswith(f'check [mqtt] username "{mosquitto_tls.username}" and the '
                                                 "mqtt_password secret"), lines
    right = config_file(tmp_path, broker(mosquitto_tls, **login, password_file=mosquitto_tls.client_password_file),
                        **{"mqtt.tls": tls})
    code, lines = online(right)
    assert code == 0 and lines["mqtt"].startswith(f'mqtt     ok: connected as "{mosquitto_tls.username}" over TLS in ')


def test_a_tls_port_without_tls_is_configuration_78(tmp_path, mosquitto_tls):
    code, lines = online(config_file(tmp_path, broker(mosquitto_tls, username=mosquitto_tls.username,
                                                      password_file=mosquitto_tls.client_password_file)))
    assert code == 78
    assert lines["mqtt"] == (f"mqtt     error: [mqtt.tls] enabled: {mosquitto_tls.host}:{mosquitto_tls.port} expects "
                             "TLS: set [mqtt.tls] enabled = true (and ca_file), or use the broker's plain MQTT port")


def test_an_untrusted_certificate_names_ca_file(tmp_path, mosquitto_tls):
    cfg = make_config(tmp_path, overrides={"mqtt": broker(mosquitto_tls, username=mosquitto_tls.username,
                                                          password_file=mosquitto_tls.client_password_file)})
    cfg = _with_tls(cfg, enabled=True)  # the system's CA store does not know the test CA
    attempt = _by_service(attempt_all(cfg))["mqtt"]
    assert attempt.reach is Reach.CONFIG
    assert attempt.text.startswith(f"[mqtt.tls]: the certificate of {mosquitto_tls.host}:{mosquitto_tls.port} is "
                                   "not accepted (")  # OpenSSL's words: self-signed certificate in certificate chain
    assert attempt.text.endswith("): ca_file must name the CA that signed it, and [mqtt] host a name it lists")


def test_a_misspelt_host_name_is_configuration_78(tmp_path):
    code, lines = online(config_file(tmp_path, {"host": "homeassistant.invalid"}))
    assert code == 78
    assert lines["mqtt"] == ('mqtt     error: [mqtt] host: no such host name "homeassistant.invalid" (a typo? with '
                             "Home Assistant's add-on: homeassistant.local or its IP address)")


def test_a_host_that_never_answers_is_unreachable_69_within_seconds(tmp_path):
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        cfg = make_config(tmp_path, overrides={"mqtt": {"host": "127.0.0.1", "port": port}})
        attempt = _by_service(attempt_all(cfg))["mqtt"]
    assert attempt.reach is Reach.UNAVAILABLE
    assert attempt.text == (f"broker 127.0.0.1:{port} took the connection but sent no answer within 5 s: "
                            "not an MQTT broker?")


# -- Spotify and YouTube -----------------------------------------------------------------------------

def test_a_speaker_that_is_not_online_is_a_warning_not_a_failure(tmp_path, spotify):
    cfg = make_config(tmp_path, spotify, overrides={"spotify": {"device_name": "Garden"},
                                                    "mqtt": {"enabled": False}})
    attempts = attempt_all(cfg)
    spot = _by_service(attempts)["spotify"]
    assert spot.reach is Reach.CAVEAT and online_exit_code(attempts) == 0
    assert spot.line() == ('  spotify  warning: token refreshed; but device "Garden" is not online right now (online: '
                           "Kitchen, Phone); idle speakers vanish from Spotify Connect: play something on it once, "
                           "or check the name")
    assert spotify.hits("POST", "/api/token") and spotify.hits("GET", "/v1/me/player/devices")


def test_a_revoked_authorisation_says_run_spotify_auth_again(tmp_path, spotify):
    cfg = make_config(tmp_path, spotify, overrides={"mqtt": {"enabled": False}})
    write_token(cfg.state_dir / "spotify_token.json", {**spotify.token_info(), "refresh_token": "revoked"})
    attempts = attempt_all(cfg)
    assert online_exit_code(attempts) == 78
    assert _by_service(attempts)["spotify"].line() == (
        "  spotify  error: Spotify refused the token refresh (invalid_grant): the saved authorisation was revoked "
        "or has expired: run `moodcast spotify-auth` again")


def test_spotify_down_is_unreachable_69(tmp_path, spotify):
    cfg = make_config(tmp_path, spotify, overrides={"mqtt": {"enabled": False},
                                                    "spotify": {"accounts_url": f"http://127.0.0.1:{free_port()}"}})
    attempts = attempt_all(cfg)
    assert online_exit_code(attempts) == 69
    assert _by_service(attempts)["spotify"].text.startswith("Spotify: cannot reach http://127.0.0.1:")


def test_a_client_id_without_its_secret_warns_offline_and_fails_online(tmp_path, spotify):
    path = config_file(tmp_path, None, spotify, spotify={"client_secret_file": ""})
    plain = run_cli("check-config", "-c", str(path), timeout=600)
    assert plain.returncode == 0 and f"{path}: OK, but 1 warning(s) below" in plain.stdout
    assert plain.stderr.strip() == (
        "moodcast: warning: config.toml: [spotify] client_id is set but no client secret is stored (credential "
        "spotify_client_secret, [spotify] client_secret_file or MOODCAST_SPOTIFY_CLIENT_SECRET); Spotify stays off "
        "until then")
    code, lines = online(path)
    assert code == 78
    assert lines["spotify"].startswith("spotify  error: Spotify: no client secret (credential spotify_client_secret")


@pytest.mark.parametrize("key, quota, reach, says", [
    ("wrong-key", 10000, Reach.CONFIG, "YouTube refused the API key (400 badRequest): check the youtube_api_key "
                                       "secret, and that YouTube Data API v3 is enabled for its project"),
    (None, 0, Reach.UNAVAILABLE, "YouTube: the key works but today's quota is spent (quotaExceeded); it resets at "
                                 "midnight Pacific time"),
])
def test_youtube_key_problems_are_named(tmp_path, youtube, key, quota, reach, says):
    youtube.quota_units = quota
    cfg = make_config(tmp_path, youtube=youtube, overrides={"mqtt": {"enabled": False}})
    if key:
        (tmp_path / "youtube_key").write_text(key)
    attempt = _by_service(attempt_all(cfg))["youtube"]
    assert (attempt.reach, attempt.text) == (reach, says)


def _by_service(attempts):
    return {a.service: a for a in attempts}


def _with_tls(cfg, **tls):
    from dataclasses import replace

    return replace(cfg, mqtt=replace(cfg.mqtt, tls=replace(cfg.mqtt.tls, **tls)))
