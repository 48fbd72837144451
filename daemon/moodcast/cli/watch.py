"""`moodcast watch`: a readable live view of what a moodcast daemon publishes."""

from __future__ import annotations

import json
import threading
import time

from moodcast.config import MqttConfig
from moodcast.mqtt.link import connect_properties, make_client

RETRY_MAX_S = 10.0  # a person is waiting: retry more often than the daemon does
MAX_PAYLOAD = 65536  # bytes of one message worth reading; moodcast's own are under 2 KB
MAX_LINE = 300


def describe(topic: str, payload: bytes) -> str:
    """One line per message, e.g. `12:00:01 kitchen  mood      happy 87%  (1 face)`.

    Anyone who can publish on the broker writes to this terminal: whatever arrives (escape
    sequences, newlines, wrongly typed fields, megabytes) becomes one short printable line, and
    never an exception in paho's thread, which would leave watch running but deaf."""
    if len(payload) > MAX_PAYLOAD:
        line = f"{time.strftime('%H:%M:%S')} {topic}: {len(payload)} bytes, not shown"
    else:
        try:
            line = _describe(topic, payload)
        except Exception as e:  # untrusted input: any field may have any type
            line = f"{time.strftime('%H:%M:%S')} {topic}: unexpected payload ({type(e).__name__}: {e})"
    return _printable(line)[:MAX_LINE]


def _printable(text: str) -> str:
    """Control characters (ESC, newlines, ...) shown escaped, never sent to the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _describe(topic: str, payload: bytes) -> str:
    parts = topic.split("/")
    device, kind = (parts[-2], parts[-1]) if len(parts) >= 3 else ("", topic)
    text = payload.decode("utf-8", "replace")
    try:
        data = json.loads(text) if text[:1] in "{[" else text
    except ValueError:
        data = text
    # <discovery_prefix>/<component>/<node>/<key>/config, the prefix of one level or more; no contract
    # topic ends in "config"
    if len(parts) >= 5 and kind == "config":
        device, kind, data = "HA", "discovery", _discovery(parts[-4], data)
    return f"{time.strftime('%H:%M:%S')} {device:<10} {kind:<14} {_summary(kind, data)}"


def _discovery(component: str, config) -> str:
    if not isinstance(config, dict):
        return f"{component} removed" if config == "" else str(config)
    return f"{config.get('default_entity_id') or component} \"{config.get('name')}\""


def _summary(kind: str, data) -> str:
    if not isinstance(data, dict):
        return str(data) if data != "" else "(cleared)"
    if kind == "state":
        return _state(data)
    if kind == "event":
        kind_ = data.get("type")
        if kind_ == "mood_changed":
            return f"mood_changed {data.get('from')} -> {data.get('to')} ({data.get('confidence', 0):.0%})"
        return f"{kind_} " + " ".join(f"{k}={v}" for k, v in data.items() if k not in ("schema", "type", "timestamp"))
    if kind == "stats":
        stages = " ".join(f"{k}={v}" for k, v in (data.get("stage_ms") or {}).items())
        return f"{data.get('fps')} fps, cpu {data.get('cpu_percent')}%, rss {data.get('rss_mb')} MB; ms: {stages}"
    if kind == "recommendation":
        music = ", ".join(_item(m) for m in data.get("music", [])[:2])
        videos = ", ".join(_item(v) for v in data.get("videos", [])[:2])
        return f"for {data.get('mood')} ({data.get('policy')}): music: {music or '-'} | videos: {videos or '-'}"
    if kind == "history":
        moods = ", ".join(f"{m} {v:g}" for m, v in (data.get("minutes") or {}).items() if v) or "none yet"
        return (f"{data.get('date')} minutes: {moods}; a face in view {data.get('face_minutes')} min, "
                f"{data.get('mood_changes')} mood changes")
    if kind == "playback":
        return f"{data.get('action')} ok={data.get('ok')} {data.get('message', '')}"
    return json.dumps(data)[:160]


def _item(item: dict) -> str:
    title, url = item.get("title", "?"), item.get("url", "")
    return url if url and title.startswith("Spotify ") else title  # an unnamed link: the link says more


def _state(data: dict) -> str:
    """`mood` is the settled mood and `faces` the last frame's count: they differ on purpose for a
    moment ([mood] min_dwell_s before a new mood, no_face_after_s before no_face), so say which is which."""
    mood, faces = data.get("mood"), data.get("faces") or 0
    shown = mood if mood in ("no_face", "uncertain") else f"{mood} {data.get('confidence', 0):.0%}"
    seen = f"{faces} face(s) in view" if faces else "nobody in view"
    if mood == "no_face" and faces:
        seen += ", mood settling"
    elif mood not in ("no_face", None) and not faces:
        seen += ", mood held for a moment"
    room = data.get("room")
    if room:  # [detector] faces = "all": whose mood the room has, and each face's
        seen += f"; room by {room.get('policy')}: {', '.join(map(str, room.get('face_moods') or [])) or '-'}"
    return f"{shown}  ({seen}){' [paused]' if data.get('paused') else ''}"


def watch(cfg: MqttConfig, topics: list[str], stop: threading.Event, out=print) -> None:
    """Print every message under `topics` until `stop` is set; while the broker cannot be reached, say why."""
    client = make_client(cfg)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics]) if not rc.is_failure else out(
        f"broker {cfg.host}:{cfg.port} refused the connection: {rc}; retrying")
    client.on_disconnect = lambda c, u, f, rc, p: rc.is_failure and out(
        f"connection to {cfg.host}:{cfg.port} lost ({rc}); reconnecting")
    client.on_connect_fail = lambda c, u: out(f"cannot reconnect to {cfg.host}:{cfg.port}; retrying")
    client.on_message = lambda c, u, m: out(describe(m.topic, bytes(m.payload)))
    client.reconnect_delay_set(cfg.reconnect_min_s, RETRY_MAX_S)  # type: ignore[arg-type]  # floats work (mqtt/link.py)
    if not _connect(client, cfg, stop, out):
        return
    client.loop_start()
    try:
        stop.wait()
    finally:
        client.disconnect()
        client.loop_stop()


def _connect(client, cfg: MqttConfig, stop: threading.Event, out) -> bool:
    """The first connection, retried with backoff and a line per failure; False when stopped first."""
    delay = cfg.reconnect_min_s
    while not stop.is_set():
        try:
            client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s, properties=connect_properties(cfg))
            return True
        except OSError as e:  # refused, unknown host, unreachable, TLS: all OSErrors
            out(f"cannot connect to {cfg.host}:{cfg.port}: {e.strerror or e}; retrying in {delay:g} s (Ctrl-C stops)")
            stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_S)
    return False
