"""config.toml -> typed, validated settings.

Each section is a dataclass; a field's metadata may give a numeric `range` or allowed `choices`.
One generic converter checks every value against the annotations and reports the first problem
as `config.toml: [mqtt] port: expected integer 1–65535, got "abc"` (exit code 78, EX_CONFIG).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6)
    import tomli as tomllib

EX_CONFIG = 78
MOODS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class ConfigError(Exception):
    """A configuration problem, worded for the user; the CLI prints it and exits with 78."""


def _opt(default, *, range=None, choices=None, doc=""):
    """A field with validation metadata (`range` is inclusive)."""
    meta = {"range": range, "choices": choices, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class CameraConfig:
    source: str = _opt("opencv", choices=("picamera2", "opencv", "gstreamer", "replay"))
    device: str = _opt("0", doc="OpenCV device index or path, e.g. 0 or /dev/video0")
    pipeline: str = _opt("", doc="GStreamer pipeline ending in appsink (source = gstreamer)")
    path: str = _opt("", doc="replay: a video file, an image, or a directory of images")
    realtime: bool = _opt(True, doc="replay at the file's own pace (false: as fast as possible)")
    loop: bool = _opt(False, doc="replay: start again at the end")
    width: int = _opt(640, range=(64, 4096))
    height: int = _opt(480, range=(48, 4096))
    max_fps: float = _opt(5.0, range=(0.1, 60.0), doc="analysed frames per second, at most")
    retry_initial_s: float = _opt(1.0, range=(0.1, 60.0))
    retry_max_s: float = _opt(30.0, range=(1.0, 600.0))
    read_timeout_s: float = _opt(5.0, range=(0.5, 120.0), doc="a read slower than this counts as a stalled camera")


@dataclass
class DetectorConfig:
    kind: str = _opt("haar", choices=("haar", "yunet"))
    model: str = _opt("", doc="yunet: path to face_detection_yunet_*.onnx")
    detect_width: int = _opt(320, range=(80, 4096), doc="frames are downscaled to this width for detection")
    min_face_px: int = _opt(40, range=(12, 2048), doc="smallest face, in pixels of the original frame")
    scale_factor: float = _opt(1.15, range=(1.01, 2.0))
    min_neighbors: int = _opt(5, range=(1, 50))
    score_threshold: float = _opt(0.7, range=(0.0, 1.0), doc="yunet only")
    faces: str = _opt("largest", choices=("largest", "all"))


@dataclass
class ModelConfig:
    path: str = _opt("", doc="int8 .tflite with its .json card beside it; empty = the bundled model")
    num_threads: int = _opt(2, range=(1, 64))


@dataclass
class MoodConfig:
    smoothing: float = _opt(0.35, range=(0.01, 1.0), doc="EMA weight of the newest frame")
    min_confidence: float = _opt(0.45, range=(0.0, 1.0), doc="below this the mood is 'uncertain'")
    switch_margin: float = _opt(0.10, range=(0.0, 1.0), doc="a new mood must beat the current one by this much")
    min_dwell_s: float = _opt(0.8, range=(0.0, 600.0), doc="a candidate mood must hold this long to become current")
    no_face_after_s: float = _opt(2.0, range=(0.0, 600.0), doc="seconds without a face before the mood is 'no_face'")


@dataclass
class TlsConfig:
    enabled: bool = _opt(False)
    ca_file: str = _opt("")
    cert_file: str = _opt("")
    key_file: str = _opt("")
    insecure: bool = _opt(False, doc="skip host name verification (self-signed lab brokers only)")


@dataclass
class MqttConfig:
    enabled: bool = _opt(True)
    host: str = _opt("localhost")
    port: int = _opt(1883, range=(1, 65535))
    protocol: str = _opt("3.1.1", choices=("3.1.1", "5"))
    prefix: str = _opt("moodcast")
    device_id: str = _opt("", doc="empty = this machine's host name")
    client_id: str = _opt("", doc="empty = moodcast-<device_id>")
    keepalive_s: int = _opt(30, range=(5, 3600))
    username: str = _opt("")
    password_file: str = _opt("", doc="file holding the password (mode 0600); or credential mqtt_password")
    reconnect_min_s: float = _opt(1.0, range=(0.1, 60.0))
    reconnect_max_s: float = _opt(60.0, range=(1.0, 3600.0))
    stats_interval_s: float = _opt(60.0, range=(1.0, 86400.0))
    discovery: bool = _opt(True, doc="Home Assistant MQTT discovery")
    discovery_prefix: str = _opt("homeassistant")
    tls: TlsConfig = field(default_factory=TlsConfig)


@dataclass
class LoggingConfig:
    level: str = _opt("info", choices=("debug", "info", "warning", "error"))


@dataclass
class StateConfig:
    dir: str = _opt("", doc="token and API caches; empty = $STATE_DIRECTORY (systemd) or ~/.local/state/moodcast")


@dataclass
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mood: MoodConfig = field(default_factory=MoodConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    state: StateConfig = field(default_factory=StateConfig)
    source_path: str = field(default="config.toml", metadata={"internal": True})

    @property
    def device_id(self) -> str:
        return sanitise_id(self.mqtt.device_id or socket.gethostname())


    @property
    def state_dir(self) -> Path:
        if self.state.dir:
            return Path(self.state.dir).expanduser()
        if os.environ.get("STATE_DIRECTORY"):  # may list several, colon-separated
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        return Path(base) / "moodcast"


def sanitise_id(text: str) -> str:
    """MQTT topic level / Home Assistant id: [a-zA-Z0-9_-] only, never empty."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in text.strip())
    return cleaned.strip("_") or "moodcast"


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    config = parse(raw, path.name)
    config.source_path = str(path)
    return config


def parse(raw: dict, filename: str = "config.toml") -> Config:
    return _build(Config, raw, filename, [])


def _build(cls, raw: dict, filename: str, where: list[str]):
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{_place(filename, where, key)}: unknown key (known: {known})")
    values = {name: _convert(hints[name], raw[name], fields[name], filename, where + [name])
              for name in fields if name in raw}
    return cls(**values)


def _convert(tp, value, f, filename: str, where: list[str]):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            _fail(filename, where, "expected a table", value)
        return _build(tp, value, filename, where)
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            _fail(filename, where, "expected a table", value)
        return {k: _convert(val_tp, v, f, filename, where + [k]) for k, v in value.items()}
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            _fail(filename, where, f"expected a list of {_TYPE_WORDS[item_tp]}s", value)
        return [_convert(item_tp, v, f, filename, where) for v in value]
    if origin in (typing.Union, types.UnionType):  # Optional[X]
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _convert(inner, value, f, filename, where)
    return _scalar(tp, value, f, filename, where)


_TYPE_WORDS = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _scalar(tp, value, f, filename, where):
    rng, choices = f.metadata.get("range"), f.metadata.get("choices")
    expected = _TYPE_WORDS[tp]
    if rng:
        expected += f" {rng[0]:g}–{rng[1]:g}"
    if choices:
        expected = "one of " + ", ".join(f'"{c}"' for c in choices)
    ok_type = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[tp]
    if not ok_type or (rng and not rng[0] <= value <= rng[1]) or (choices and value not in choices):
        _fail(filename, where, f"expected {expected}", value)
    return float(value) if tp is float else value


def _place(filename: str, where: list[str], key: str | None = None) -> str:
    section, keys = where[:-1] if key is None else where, [where[-1]] if key is None else [key]
    table = f" [{'.'.join(section)}]" if section else ""
    return f"{filename}:{table} {keys[0]}"


def _fail(filename, where, expected, value):
    shown = f'"{value}"' if isinstance(value, str) else repr(value).lower() if isinstance(value, bool) else repr(value)
    raise ConfigError(f"{_place(filename, where)}: {expected}, got {shown}")
