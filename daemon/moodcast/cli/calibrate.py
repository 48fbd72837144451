"""`moodcast calibrate`: a resting-face calibration, made by the running service over MQTT (it holds the
camera), or here with the camera while the service is stopped (`--camera`).

Either way the same code decides (moodcast.service.calibration) and the same file is written. Over
MQTT this is a thin client: it sends `set/calibrate` (or `set/reset_calibration`) and prints the
events that answer it, so it also shows what the Home Assistant button does.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from moodcast.config import Config
from moodcast.errors import MoodcastError
from moodcast.mqtt import payloads
from moodcast.mqtt.link import make_client
from moodcast.mqtt.payloads import Event
from moodcast.topics import COMMAND_LEVEL, Topics

Out = Callable[[str], None]
ONLINE_WAIT_S = 5.0  # the retained availability arrives at once when the service is up
ANSWER_WAIT_S = 15.0  # the command's result: the service applies commands between frames
FINISH_MARGIN_S = 60.0  # beyond calibration_s: an idle camera analyses one frame a second


class CalibrateError(MoodcastError):
    """The calibration could not be asked for (broker, service, camera); exit 1."""


def describe(event: dict[str, Any]) -> str:
    """One line for a calibration event (or the command's result)."""
    kind = event.get("type")
    if kind == "calibration_started":
        return f"calibrating: relax and look at the camera for {event['duration_s']:g} s ..."
    if kind == "calibration_done":
        moods = ", ".join(f"{k} {v:+.2f}" for k, v in event["offset"].items())
        return (f"calibrated on {event['faces']} frames: offset {event['offset_size']:.2f} ({moods}), "
                f"applied at strength {event['strength']:g}")
    if kind == "calibration_failed":
        return f"calibration failed ({event['reason']}): {event['message']}; nothing was stored"
    return str(event.get("message", event))


def over_mqtt(cfg: Config, reset: bool, out: Out) -> int:
    """Ask the running service; 0 when it calibrated (or reset), 1 when it failed or refused."""
    m, topics = cfg.mqtt, cfg.topics
    command = "reset_calibration" if reset else "calibrate"
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    connected = threading.Event()
    client = make_client(m, f"moodcast-calibrate-{os.getpid()}")

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            c.subscribe([(topics.of("availability"), 1), (topics.of("event"), 1)])
            connected.set()

    client.on_connect = on_connect
    client.on_message = lambda c, u, msg: inbox.put((msg.topic, bytes(msg.payload)))
    try:
        client.connect(m.host, m.port, keepalive=m.keepalive_s)
    except OSError as e:
        raise CalibrateError(f"cannot connect to the broker {m.host}:{m.port}: {e.strerror or e} "
                             "(with the service stopped: moodcast calibrate --camera)") from None
    client.loop_start()
    try:
        if not connected.wait(ONLINE_WAIT_S):
            raise CalibrateError(f"the broker {m.host}:{m.port} did not accept the connection")
        _wait_online(inbox, topics)
        client.publish(f"{topics.base}/{COMMAND_LEVEL}/{command}", b"", qos=1)
        return _follow(inbox, topics, command, out)
    finally:
        client.disconnect()
        client.loop_stop()


def _wait_online(inbox: queue.Queue, topics: Topics) -> None:
    try:
        while True:
            topic, payload = inbox.get(timeout=ONLINE_WAIT_S)
            if topic == topics.of("availability"):
                if payload.decode("utf-8", "replace") != payloads.ONLINE:
                    raise CalibrateError(f"the moodcast service of {topics.base} is offline (start it, or stop "
                                         "it and use moodcast calibrate --camera)")
                return
    except queue.Empty:
        raise CalibrateError(f"no moodcast service answers under {topics.base} (check [mqtt] prefix and "
                             "device_id, or use moodcast calibrate --camera with the service stopped)") from None


def _follow(inbox: queue.Queue, topics: Topics, command: str, out: Out) -> int:
    """Print the command's result and, for a calibration, its events until it is done or failed."""
    wait = ANSWER_WAIT_S
    while True:
        try:
            topic, payload = inbox.get(timeout=wait)
        except queue.Empty:
            raise CalibrateError(f"no answer from the service of {topics.base} within {wait:g} s") from None
        if topic != topics.of("event"):
            continue
        event = json.loads(payload)
        kind = event.get("type")
        if kind == "command" and event.get("command") == command:
            out(describe(event))
            if not event.get("ok"):
                return 1
            if command == "reset_calibration":
                return 0
        elif kind == "calibration_started":
            out(describe(event))
            wait = float(event["duration_s"]) + FINISH_MARGIN_S
        elif kind in ("calibration_done", "calibration_failed"):
            out(describe(event))
            return 0 if kind == "calibration_done" else 1


def with_camera(cfg: Config, reset: bool, out: Out) -> int:
    """Calibrate here, with the camera (the service must not hold it); the service applies the result
    when it starts or reloads (systemctl reload moodcast)."""
    from moodcast.service.calibration import CalibrationRefused, Calibrator
    from moodcast.vision.analyzer import Analyzer
    from moodcast.vision.calibration import Failure
    from moodcast.vision.camera import Camera, Tick, TickReason
    from moodcast.vision.classifier import EmotionClassifier
    from moodcast.vision.detector import make_detector

    classifier = EmotionClassifier(cfg.model.path or None, cfg.model.num_threads)
    calibrator = Calibrator(classifier, cfg.state_dir, cfg.model)
    if reset:
        calibrator.reset()
        out(f"calibration reset ({calibrator.file.path} removed); a running service forgets it on "
            "systemctl reload moodcast")
        return 0
    try:
        started = calibrator.start()
    except CalibrationRefused as e:
        raise CalibrateError(str(e)) from None
    analyzer = Analyzer(make_detector(cfg.detector), classifier, cfg.detector.faces)
    camera = Camera(cfg.camera, threading.Event())
    camera.check()
    out(describe(started.body()))
    for item in camera.frames():
        if isinstance(item, Tick):
            events = calibrator.abort(Failure.CAMERA, f"the camera failed ({item.reason}): is the service "
                                      "holding it? Then calibrate without --camera") \
                if item.reason is not TickReason.PAUSED else []
        else:
            analysis = analyzer.analyse(item.image)
            largest = analysis.classified[0].scores.log_probs if analysis.classified else None
            events = calibrator.frame(len(analysis.faces), largest, item.timestamp)
        if events:
            return _report(events, calibrator.file.path, out)
    return _report(calibrator.abort(Failure.CAMERA, "the camera (or replay) ended first"), calibrator.file.path, out)


def _report(events: list[Event], path, out: Out) -> int:
    for event in events:
        out(describe(event.body()))
    if events[0].type != "calibration_done" or any(event.type == "error" for event in events):
        return 1  # failed, or done but not saved: this process ends, and with it the calibration
    out(f"stored in {path}; a running service applies it on systemctl reload moodcast")
    return 0
