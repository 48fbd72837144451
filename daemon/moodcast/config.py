"""config.toml -> typed, validated, frozen settings.

Each section is a frozen dataclass; a field's metadata may give a numeric `range`, allowed
`choices`, a `check` and a `convert`. One generic converter checks every value against the
annotations and reports the first problem as `config.toml: [mqtt] port: expected integer 1–65535,
got "abc"` (exit code 78, EX_CONFIG). Command-line overrides (`run --replay`, `watch --port`, the
demo's broker) are merged into the raw TOML data before that check, never written afterwards.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import socket
import stat
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from moodcast.errors import EX_CONFIG, MoodcastError
from moodcast.labels import MOODS, POLICIES, Policy
from moodcast.recommend import spotify_links
from moodcast.recommend.defaults import MOOD_DEFAULTS
from moodcast.topics import Topics, device_id_problem, prefix_problem, sanitise_id
from moodcast.util import NotARegularFile, read_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6)
    import tomli as tomllib

__all__ = ["EX_CONFIG"]  # re-exported: the unit's RestartPreventExitStatus is checked against it


class ConfigError(MoodcastError):
    """A configuration problem, worded for the user; the CLI prints it and exits with 78."""

    exit_code = EX_CONFIG


def _opt(default: Any, *, range: tuple[float, float] | None = None, choices: tuple[str, ...] | None = None,
         check: Callable[[Any], str | None] | None = None, convert: Callable[[Any], Any] | None = None) -> Any:
    """A field with validation metadata: `range` is inclusive; `check(value)` returns a problem or None;
    `convert(value)` turns a checked value into the stored one. For a list, they apply to each item."""
    meta = {"range": range, "choices": choices, "check": check, "convert": convert}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


MAX_STRING = 4096  # no setting needs more (PATH_MAX); a longer one is a mistake


def _wire_string(limit: int):
    """A string sent to the broker (client id, user name): bounded, one line."""
    def check(value: str) -> str | None:
        if len(value.encode()) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
            return f"expected at most {limit} bytes on one line, without control characters"
        return None
    return check


def _host(value: str) -> str | None:
    if not value or len(value) > 253 or any(c.isspace() or ord(c) < 32 for c in value):
        return "expected a host name or IP address"
    return None


def _camera_device(value: str) -> str | None:
    if re.fullmatch(r"[0-9]{1,3}", value) or value.startswith("/"):
        return None
    return "expected a device index such as 0 or a device path such as /dev/video0"


def _pipeline(value: str) -> str | None:
    return None if not value or "appsink" in value else "expected a GStreamer pipeline ending in appsink"


@dataclass(frozen=True)
class CameraConfig:
    source: str = _opt("opencv", choices=("picamera2", "opencv", "gstreamer", "replay"))
    device: str = _opt("0", check=_camera_device)  # OpenCV device index or path, e.g. 0 or /dev/video0
    index: int = _opt(0, range=(0, 7))  # picamera2: which camera, as `rpicam-hello --list-cameras` numbers them
    pipeline: str = _opt("", check=_pipeline)  # GStreamer pipeline ending in appsink (source = gstreamer)
    path: str = _opt("")  # replay: a video file, an image, or a directory of images
    realtime: bool = _opt(True)  # replay at the file's own pace (false: as fast as possible)
    loop: bool = _opt(False)  # replay: start again at the end
    image_seconds: float = _opt(3.0, range=(0.1, 3600.0))  # replay: how long each still image stays in view
    width: int = _opt(640, range=(64, 4096))
    height: int = _opt(480, range=(48, 4096))
    max_fps: float = _opt(5.0, range=(0.1, 60.0))  # analysed frames per second, at most
    idle_after_s: float = _opt(10.0, range=(0.0, 86400.0))  # no face for this long: analyse at idle_fps (0 = never)
    idle_fps: float = _opt(1.0, range=(0.1, 60.0))  # analysed rate while nobody is in view
    retry_initial_s: float = _opt(1.0, range=(0.1, 60.0))
    retry_max_s: float = _opt(30.0, range=(1.0, 600.0))
    read_timeout_s: float = _opt(5.0, range=(0.5, 120.0))  # a read slower than this counts as a stalled camera


@dataclass(frozen=True)
class DetectorConfig:
    kind: str = _opt("blazeface", choices=("blazeface", "haar", "yunet"))
    variant: str = _opt("full", choices=("full", "short"))  # blazeface: full range (to ~5 m) or short range (~2 m)
    model: str = _opt("")  # yunet: path to face_detection_yunet_*.onnx; blazeface: empty = the bundled model
    detect_width: int = _opt(320, range=(80, 4096))  # frames are downscaled to this width for detection
    min_face_px: int = _opt(40, range=(12, 2048))  # smallest face, in pixels of the original frame
    scale_factor: float = _opt(1.15, range=(1.01, 2.0))
    min_neighbors: int = _opt(5, range=(1, 50))
    score_threshold: float = _opt(0.6, range=(0.0, 1.0))  # blazeface and yunet: least face confidence
    # blazeface: frames a found face is followed in a square around it before the next whole-frame search
    # (0 = every frame whole)
    track_frames: int = _opt(4, range=(0, 100))
    # blazeface full range: whole-frame finds scoring under this are checked again by the short-range model (0 = none)
    verify_below: float = _opt(0.7, range=(0.0, 1.0))
    faces: str = _opt("largest", choices=("largest", "all"))


@dataclass(frozen=True)
class ModelConfig:
    path: str = _opt("")  # int8 .tflite with its .json card beside it; empty = the bundled model
    num_threads: int = _opt(2, range=(1, 64))
    # how much of a stored resting-face calibration is taken out of each face's log-probabilities (0 = off);
    # 1 was best in python -m bench.calibration
    calibration_strength: float = _opt(1.0, range=(0.0, 1.0))
    calibration_s: float = _opt(20.0, range=(5.0, 300.0))  # a calibration watches the face this long


@dataclass(frozen=True)
class MoodConfig:
    smoothing: float = _opt(0.5, range=(0.01, 1.0))  # EMA weight of the newest frame
    min_confidence: float = _opt(0.40, range=(0.0, 1.0))  # below this the mood is 'uncertain'
    switch_margin: float = _opt(0.10, range=(0.0, 1.0))  # a new mood must beat the current one by this much
    min_dwell_s: float = _opt(0.6, range=(0.0, 600.0))  # a candidate mood must hold this long to become current
    no_face_after_s: float = _opt(2.0, range=(0.0, 600.0))  # seconds without a face before the mood is 'no_face'
    # with [detector] faces = "all", each face is smoothed on its own and the room's mood is the largest
    # face's, the one most faces hold, or the most negative one some face holds (for uplift music)
    room: str = _opt("largest", choices=("largest", "majority", "any_negative"))


@dataclass(frozen=True)
class TlsConfig:
    enabled: bool = _opt(False)
    ca_file: str = _opt("")
    cert_file: str = _opt("")
    key_file: str = _opt("")
    insecure: bool = _opt(False)  # skip host name verification (self-signed lab brokers only)


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = _opt(True)
    host: str = _opt("localhost", check=_host)
    port: int = _opt(1883, range=(1, 65535))
    protocol: str = _opt("3.1.1", choices=("3.1.1", "5"))
    prefix: str = _opt("moodcast", check=prefix_problem)
    device_id: str = _opt("", check=lambda v: _wire_string(64)(v) or device_id_problem(v))  # empty = host name
    client_id: str = _opt("", check=_wire_string(128))  # empty = moodcast-<device_id>
    keepalive_s: int = _opt(30, range=(5, 3600))
    username: str = _opt("", check=_wire_string(256))
    password_file: str = _opt("")  # file holding the password (mode 0600); or credential mqtt_password
    reconnect_min_s: float = _opt(1.0, range=(0.1, 60.0))
    reconnect_max_s: float = _opt(60.0, range=(1.0, 3600.0))
    stats_interval_s: float = _opt(60.0, range=(1.0, 86400.0))
    discovery: bool = _opt(True)  # Home Assistant MQTT discovery
    discovery_prefix: str = _opt("homeassistant", check=prefix_problem)
    tls: TlsConfig = field(default_factory=TlsConfig)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _opt("info", choices=("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class StateConfig:
    dir: str = _opt("")  # token and API caches; empty = $STATE_DIRECTORY (systemd) or ~/.local/state/moodcast


@dataclass(frozen=True)
class SpotifyConfig:
    enabled: bool = _opt(True)  # also needs client_id, the client secret and a token from `moodcast spotify-auth`
    client_id: str = _opt("")  # from your app at developer.spotify.com
    client_secret_file: str = _opt("")  # file with the secret (mode 0600); or credential spotify_client_secret
    redirect_uri: str = _opt("http://127.0.0.1:8888/callback")  # registered in the app; a loopback IP, not localhost
    device_name: str = _opt("")  # Spotify Connect device to play on; empty = the active device
    device_fallback: bool = _opt(True)  # named device missing: play on the active (or only) device instead
    device_retries: int = _opt(2, range=(0, 10))  # a missing device is looked for again this often
    device_retry_s: float = _opt(3.0, range=(0.01, 300.0))
    market: str = _opt("")  # ISO 3166-1 country for search; empty = the account's
    search_limit: int = _opt(10, range=(1, 10))  # development-mode apps may ask for 10 at most
    search_cache_ttl_s: float = _opt(86400.0, range=(60.0, 2592000.0))
    timeout_s: float = _opt(5.0, range=(0.1, 60.0))  # per HTTP request
    backoff_initial_s: float = _opt(5.0, range=(0.01, 3600.0))  # first wait after a 5xx, timeout or network error
    backoff_max_s: float = _opt(900.0, range=(1.0, 86400.0))  # longest wait, also caps a 429's Retry-After
    api_url: str = _opt("https://api.spotify.com/v1/")
    accounts_url: str = _opt("https://accounts.spotify.com")


@dataclass(frozen=True)
class YoutubeConfig:
    enabled: bool = _opt(True)  # also needs an API key
    api_key_file: str = _opt("")  # file with the key (mode 0600); or credential youtube_api_key
    safe_search: str = _opt("strict", choices=("none", "moderate", "strict"))
    region_code: str = _opt("")  # ISO 3166-1 alpha-2, e.g. DE; empty = not sent
    relevance_language: str = _opt("")  # ISO 639-1, e.g. de; empty = not sent
    music_only: bool = _opt(True)  # videoCategoryId 10 (Music)
    max_results: int = _opt(5, range=(1, 50))
    cache_ttl_s: float = _opt(86400.0, range=(60.0, 2592000.0))
    daily_budget: int = _opt(90, range=(0, 10000))  # search.list calls per Pacific day (100 units each of 10,000)
    timeout_s: float = _opt(5.0, range=(0.1, 60.0))
    api_url: str = _opt("https://youtube.googleapis.com/")


@dataclass(frozen=True)
class MoodMusicConfig:
    """One table under [recommendations.moods]; a key it leaves out keeps the shipped default for that
    mood (recommend/defaults.py, merged in before validation), or is empty for a table of your own."""
    policy: str = _opt("", choices=("", *POLICIES))  # empty = [recommendations] policy
    uplift: list[str] = _opt([])  # uplift: tables played in turn, each for uplift_step_s; [] = own music
    # your playlists/albums/tracks: spotify:... URIs or open.spotify.com links
    spotify_uris: list[str] = _opt([], check=spotify_links.link_problem, convert=spotify_links.to_uri)
    spotify_search: list[str] = _opt([])  # playlist search phrases
    youtube_search: list[str] = _opt([])  # video search phrases
    volume: int = _opt(-1, range=(-1, 100))  # -1 = leave the volume alone


def _default_moods() -> dict[str, MoodMusicConfig]:
    return {name: MoodMusicConfig(**defaults) for name, defaults in MOOD_DEFAULTS.items()}


@dataclass(frozen=True)
class RecommendationsConfig:
    policy: Policy = _opt(Policy.UPLIFT)  # runtime-settable; off disables every mood
    autoplay: bool = _opt(False)  # start music on Spotify by itself (opt-in; false: only publish recommendations)
    cooldown_s: float = _opt(120.0, range=(0.0, 86400.0))  # no playback change more often than this
    variety: int = _opt(3, range=(0, 50))  # do not replay any of the last N choices while others exist
    uplift_step_s: float = _opt(600.0, range=(0.1, 86400.0))  # uplift: next step after the mood held this long
    respect_manual: bool = _opt(True)  # do not override music the user started themselves...
    manual_window_s: float = _opt(1800.0, range=(0.0, 86400.0))  # ...until they stop or this long has passed
    manual_check_s: float = _opt(60.0, range=(0.1, 3600.0))  # how often to look whether they stopped
    pause_on_no_face: bool = _opt(True)  # pause music moodcast started when nobody is seen...
    no_face_pause_s: float = _opt(300.0, range=(1.0, 86400.0))  # ...for this long
    music_items: int = _opt(5, range=(1, 50))  # music items in a recommendation
    moods: dict[str, MoodMusicConfig] = field(default_factory=_default_moods)

    def __post_init__(self) -> None:
        _check_table_names(self.moods)
        for name, table in self.moods.items():
            unknown = [step for step in table.uplift if step not in self.moods]
            if unknown:
                raise ConfigError(f'config.toml: [recommendations.moods.{name}] uplift: no table named "{unknown[0]}" '
                                  f"(known: {', '.join(self.moods)})")


def _with_mood_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`raw` with the shipped tables added and their keys filled in where [recommendations.moods.X] is silent."""
    recommendations = raw.get("recommendations", {})
    moods = recommendations.get("moods", {}) if isinstance(recommendations, dict) else None
    if not isinstance(moods, dict):
        return dict(raw)  # not tables: the converter says what is wrong with them
    merged = {name: dict(defaults) for name, defaults in MOOD_DEFAULTS.items()}
    for name, table in moods.items():
        merged[name] = {**merged.get(name, {}), **table} if isinstance(table, dict) else table
    return merge(raw, {"recommendations": {"moods": merged}})


def _check_table_names(moods: dict[str, MoodMusicConfig]) -> None:
    """A table is a mood, a shipped step (calm) or a step some uplift names; anything else is a typo."""
    steps = {step for table in moods.values() for step in table.uplift}
    for name in moods:
        if name not in MOOD_DEFAULTS and name not in steps:
            close = difflib.get_close_matches(name, list(MOOD_DEFAULTS), n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            raise ConfigError(f"config.toml: [recommendations.moods.{name}]: no mood of that name, and no uplift "
                              f"step uses it ({hint}moods: {', '.join(MOODS)}; steps: {', '.join(sorted(steps))})")


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mood: MoodConfig = field(default_factory=MoodConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    state: StateConfig = field(default_factory=StateConfig)
    spotify: SpotifyConfig = field(default_factory=SpotifyConfig)
    youtube: YoutubeConfig = field(default_factory=YoutubeConfig)
    recommendations: RecommendationsConfig = field(default_factory=RecommendationsConfig)
    source_path: str = field(default="config.toml", metadata={"internal": True})

    @property
    def device_id(self) -> str:
        return sanitise_id(self.mqtt.device_id or socket.gethostname())

    @property
    def topics(self) -> Topics:
        return Topics(self.mqtt.prefix, self.device_id, self.mqtt.discovery_prefix)

    @property
    def state_dir(self) -> Path:
        if self.state.dir:
            return Path(self.state.dir).expanduser()
        if os.environ.get("STATE_DIRECTORY"):  # may list several, colon-separated
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        return Path(base) / "moodcast"


MAX_CONFIG_BYTES = 1 << 20  # the reference file is 10 KB; this stops `-c /dev/zero` eating the memory


def read(path: str | Path) -> dict[str, Any]:
    """The TOML data of a configuration file, unchecked; ConfigError when it cannot be read or parsed."""
    path = Path(path)
    try:
        data, _ = read_regular(path, MAX_CONFIG_BYTES)  # a FIFO or a device is refused, never waited on
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; not a moodcast configuration")
        return tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except NotARegularFile as e:
        raise ConfigError(f"{path}: {e}; name the configuration file itself") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {str(e)[:200]}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None


def trust_problems(path: str | Path) -> list[str]:
    """Why someone other than root or this user could change the configuration, one line each: the
    file writable by group or others or owned by another user, or a directory on its way that others
    may write to (without the sticky bit: they can replace the file) or that another user owns.
    Whoever can write it can point the daemon at their broker, or at secret files of their choosing."""
    try:
        real = Path(path).resolve()
        st = real.stat()
    except OSError:
        return []  # read() says what is wrong with it
    ours = (0, os.geteuid())
    problems = []
    if st.st_mode & 0o022:
        who = {0o020: "its group", 0o002: "everyone", 0o022: "its group and everyone"}[st.st_mode & 0o022]
        problems.append(f"{real} is writable by {who} (mode {st.st_mode & 0o777:04o}); run: chmod go-w {real}")
    if st.st_uid not in ours:
        problems.append(f"{real} belongs to another user (uid {st.st_uid}); run: chown root {real}")
    for directory in real.parents:
        dst = directory.stat()
        if dst.st_mode & 0o002 and not dst.st_mode & stat.S_ISVTX:
            problems.append(f"{directory} is writable by everyone (mode {dst.st_mode & 0o777:04o}): anyone can "
                            f"replace {real.name}; run: chmod o-w {directory}")
        if dst.st_uid not in ours:
            problems.append(f"{directory} belongs to another user (uid {dst.st_uid}), who can replace {real.name}")
    return problems


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read, merge `overrides` (e.g. {"mqtt": {"port": 1884}}) into the file's data, validate, freeze."""
    path = Path(path)
    return parse(merge(read(path), overrides or {}), path.name, source_path=str(path))


def merge(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `raw` with `overrides` laid over it, table by table (neither is changed)."""
    merged = dict(raw)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def parse(raw: Mapping[str, Any], filename: str = "config.toml", source_path: str = "config.toml") -> Config:
    config = _build(Config, _with_mood_defaults(raw), filename, [])
    if config.camera.source == "gstreamer" and not config.camera.pipeline:
        raise ConfigError(f'{filename}: [camera] pipeline: source = "gstreamer" needs a pipeline ending in appsink')
    return dataclasses.replace(config, source_path=source_path)


def _build(cls, raw: dict, filename: str, where: list[str]):
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{_place(filename, where, key)}: unknown key (known: {known})")
    values = {name: _convert(hints[name], raw[name], fields[name], filename, where + [name])
              for name in fields if name in raw}
    try:
        return cls(**values)
    except ConfigError as e:  # a table's own checks (__post_init__) cannot know the file's real name
        raise ConfigError(_cut(str(e).replace("config.toml:", f"{filename}:", 1), 400)) from None


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
    if isinstance(tp, type) and issubclass(tp, Enum):  # a closed set of strings, e.g. Policy
        choices = tuple(member.value for member in tp)
        if not isinstance(value, str) or value not in choices:
            _fail(filename, where, "expected one of " + ", ".join(f'"{c}"' for c in choices), value)
        return tp(value)
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
    if tp is str and len(value) > MAX_STRING:
        _fail(filename, where, f"expected at most {MAX_STRING} characters", value)
    problem = f.metadata.get("check") and f.metadata["check"](value)
    if problem:
        _fail(filename, where, problem, value)
    if f.metadata.get("convert"):
        return f.metadata["convert"](value)
    return float(value) if tp is float else value


def _place(filename: str, where: list[str], key: str | None = None) -> str:
    section, keys = where[:-1] if key is None else where, [where[-1]] if key is None else [key]
    table = f" [{'.'.join(section)}]" if section else ""
    return _cut(f"{filename}:{table} {keys[0]}", 200)  # a pasted blob as a key name stays one short line


def _fail(filename, where, expected, value):
    # json.dumps: quoted, and a newline or escape sequence in the value cannot break the one-line error
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
    else:
        shown = repr(value).lower() if isinstance(value, bool) else repr(value)
    raise ConfigError(f"{_place(filename, where)}: {expected}, got {_cut(shown, 80)}")


def _cut(text: str, limit: int) -> str:
    """An error is one line in a journal, not an echo of whatever was pasted."""
    return text if len(text) <= limit else f"{text[:limit - 20]}... ({len(text)} characters)"
