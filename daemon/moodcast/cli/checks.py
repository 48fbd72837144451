"""`moodcast check-config`: what the service would meet on this machine, beyond a valid config.toml.

Each check returns findings, one line each that names the key. An error means the service cannot
work as configured; a warning means it may work later (a webcam plugged in afterwards), only by
luck (a broker that accepts a user without a password), or that a feature was half set up and
stays off (a Spotify client_id without its secret). `--strict` treats warnings as errors.
`--online` then tries the broker, Spotify and YouTube themselves (moodcast.cli.online).
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import cv2

from moodcast.config import Config, ConfigError, trust_problems
from moodcast.secrets import read_secret


class Finding(NamedTuple):
    level: str  # "error" | "warning"
    text: str


def check_setup(cfg: Config) -> list[Finding]:
    name = Path(cfg.source_path).name
    findings = _camera(cfg) + _mqtt(cfg) + _spotify(cfg) + _state(cfg)
    trust = [Finding("warning", f"{problem}: whoever can change it can point moodcast at their broker or secrets")
             for problem in trust_problems(cfg.source_path)]
    return trust + [Finding(f.level, f"{name}: {f.text}") for f in findings]


def check_detector_model(cfg: Config) -> None:
    """A YuNet detector without its .onnx file is a configuration error that names the file."""
    d, name = cfg.detector, Path(cfg.source_path).name
    if d.kind != "yunet":
        return
    if not d.model:
        raise ConfigError(f'{name}: [detector] model: kind = "yunet" needs the path of a YuNet model file '
                          "(face_detection_yunet_2023mar.onnx from the OpenCV model zoo); none is set")
    if not Path(d.model).is_file():
        raise ConfigError(f"{name}: [detector] model: {d.model}: no such file")


def _camera(cfg: Config) -> list[Finding]:
    c = cfg.camera
    if c.source == "picamera2":
        return _picamera2()
    if c.source == "opencv":
        return _video_device(c.device)
    if c.source == "gstreamer" and not _opencv_has_gstreamer():
        return [Finding("error", '[camera] source = "gstreamer": this OpenCV was built without GStreamer '
                                 "(pip wheels are); on a Jetson the installer uses JetPack's OpenCV")]
    if c.source == "replay":
        return _replay(c.path)
    return []


def _replay(path: str) -> list[Finding]:
    from moodcast.vision.camera import Replay, SourceError

    try:
        Replay(path, 1.0, loop=False).check()
    except SourceError as e:
        return [Finding("error", f"[camera] path: {e}")]
    return []


def _picamera2() -> list[Finding]:
    try:
        importlib.import_module("picamera2")
    except ImportError as e:
        return [Finding("error", f'[camera] source = "picamera2": picamera2 is not importable ({e}); on Raspberry '
                                 "Pi OS: apt install python3-picamera2 and a venv made with --system-site-packages")]
    return []


def _video_device(device: str) -> list[Finding]:
    path = f"/dev/video{device}" if device.isdigit() else device
    if not os.path.exists(path):
        return [Finding("warning", f"[camera] device: {path} does not exist (webcam unplugged? see "
                                   "`ls /dev/v4l/by-id/`); the service would keep retrying")]
    if not os.access(path, os.R_OK | os.W_OK):
        return [Finding("warning", f"[camera] device: {path} is not usable by this user (uid {os.getuid()}); "
                                   "the service user must be in group 'video'")]
    return []


def _opencv_has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def _mqtt(cfg: Config) -> list[Finding]:
    m = cfg.mqtt
    if not m.enabled:
        return []
    findings = []
    if m.username and not read_secret("mqtt_password", m.password_file):
        findings.append(Finding("warning", f'[mqtt] username = "{m.username}" but no password is stored '
                                           "(credential mqtt_password, [mqtt] password_file or "
                                           "MOODCAST_MQTT_PASSWORD); the broker will likely refuse it"))
    if m.tls.enabled:
        from moodcast.mqtt.link import ssl_context

        try:
            ssl_context(m)
        except ConfigError as e:
            findings.append(Finding("error", str(e)))
    return findings


def _spotify(cfg: Config) -> list[Finding]:
    """Half of Spotify's setup is a warning: it stays off, and autoplay then plays nothing."""
    from moodcast.recommend.spotify_auth import token_path

    s = cfg.spotify
    secret = s.enabled and read_secret("spotify_client_secret", s.client_secret_file or None)
    missing = ""
    if s.enabled and s.client_id and not secret:
        missing = ("[spotify] client_id is set but no client secret is stored (credential spotify_client_secret, "
                   "[spotify] client_secret_file or MOODCAST_SPOTIFY_CLIENT_SECRET)")
    elif secret and not s.client_id:
        missing = "a Spotify client secret is stored but [spotify] client_id is empty"
    elif secret and not token_path(cfg).exists():
        missing = (f"Spotify is not authorised yet (no token in {token_path(cfg)}): run `moodcast spotify-auth` "
                   "as the service's user (sudo moodcast-as-service spotify-auth)")
    findings = [Finding("warning", f"{missing}; Spotify stays off until then")] if missing else []
    if cfg.recommendations.autoplay and (missing or not (s.enabled and s.client_id)):
        findings.append(Finding("warning", "[recommendations] autoplay = true, but Spotify is off: no music will "
                                           "start"))
    return findings


def _state(cfg: Config) -> list[Finding]:
    """The settings (privacy pause, policy, autoplay) and the Spotify token are saved in the state directory."""
    path = cfg.state_dir
    existing = next(p for p in (path, *path.parents) if p.exists())  # the daemon creates what is missing
    try:
        with tempfile.TemporaryFile(dir=existing):  # O_TMPFILE: nothing to clean up, even if killed
            pass
    except OSError as e:
        where = "" if existing == path else f" (it would be created in {existing})"
        return [Finding("warning", f"[state] dir: {path}{where}: cannot write there ({e.strerror or e}): "
                                   "the privacy pause, policy and autoplay set by command, and the Spotify token, "
                                   "cannot be saved and will not survive a restart")]
    return []
