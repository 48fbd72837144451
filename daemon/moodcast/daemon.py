"""The daemon: camera -> analysis -> mood tracker -> MQTT and recommendations, one frame at a time.

Everything runs on the main thread except paho's network thread, the camera reader thread and
the recommendation worker; they hand data to this loop through thread-safe queues and events,
so the frame loop never waits on the network.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time


from moodcast import __version__, config as config_module, homeassistant, payloads
from moodcast.camera import Camera, Frame, IdleBackoff, Tick
from moodcast.classifier import EmotionClassifier, ModelOutputError
from moodcast.commands import Command, CommandError, Incoming, parse_command
from moodcast.config import Config
from moodcast.detector import make_detector
from moodcast.errors import MoodcastError
from moodcast.heap import return_large_buffers
from moodcast.logs import setup_logging
from moodcast.mqtt import MqttLink
from moodcast.notify import Notifier
from moodcast.pipeline import Analyzer
from moodcast.recommend.service import RecommendationService
from moodcast.settings import Settings, SettingsFile
from moodcast.signals import EarlySignals
from moodcast.stats import PipelineStats
from moodcast.tracker import MoodChange, MoodTracker

log = logging.getLogger("moodcast")
STATE_REFRESH_S = 1.0  # at most this often for score-only updates of the retained state
SCORE_CHANGE = 0.05  # ...and only when a score moved by this much
LIVE_CAMERA = {"max_fps", "idle_after_s", "idle_fps"}  # [camera] keys a reload applies without a restart


class Daemon:
    def __init__(self, config: Config, signals: EarlySignals | None = None):
        self.config = config
        return_large_buffers()  # a flood of oversized commands must not grow the daemon for good
        # `moodcast run` passes the handlers it installed first (moodcast.signals): a signal during start-up counts
        self.stop_event = signals.stop if signals else threading.Event()
        self.reload_requested = signals.reload if signals else threading.Event()
        self.notifier = Notifier()
        self.commands: queue.Queue[Incoming] = queue.Queue(maxsize=64)
        self.commands_dropped = 0  # written by paho's thread, reported by the frame loop
        self._dropped_reported = 0
        self.classifier = EmotionClassifier(config.model.path or None, config.model.num_threads)
        self.analyzer = Analyzer(make_detector(config.detector), self.classifier, config.detector.faces)
        self.camera = Camera(config.camera, self.stop_event)
        self.camera.check()  # a replay that cannot play fails here, before `online` and READY
        self.backoff = IdleBackoff(config.camera)
        self.tracker = MoodTracker(config.mood, self.classifier.labels, start=0.0)
        self.stats = PipelineStats()
        self.link = MqttLink(config.mqtt, config.device_id, self._queue_command) if config.mqtt.enabled else None
        self.recommender = RecommendationService(config, self._publish)
        self.settings_file = SettingsFile(config.state_dir)
        self._restore_settings()
        self.faces = 0
        self._last_frame_ts = 0.0
        self._mood_since_wall = time.time()
        self._last_state: tuple | None = None
        self._last_state_at = 0.0
        self._last_stats_at = time.monotonic()
        self._stats_at_start = True  # else Home Assistant shows the previous run's fps and CPU until the first stats
        self._tick_reason = ""
        self._last_model_fault = ""

    # -- start and stop -------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        if self.link:
            self.link.start()
            self._publish_discovery()
        self.recommender.start()
        self._publish_state(force=True)
        self.notifier.ready(f"model {self.classifier.path.name}, camera {self.config.camera.source}")
        log.info("moodcast %s running: %s camera, %s, max %.1f fps", __version__, self.config.camera.source,
                 self.classifier.path.name, self.config.camera.max_fps)
        try:
            for item in self.camera.frames():
                self._handle_pending()
                if isinstance(item, Tick):
                    self._idle(item)
                elif not self.camera.paused.is_set():  # a frame grabbed before a pause is not analysed
                    self._process(item)
                self._maybe_publish_stats()
                if self.stop_event.is_set():
                    break
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        self.notifier.stopping()
        log.info("stopping")
        self.recommender.stop()
        if self.link:
            self.link.stop()

    # -- the frame loop ---------------------------------------------------------------------
    def _process(self, frame: Frame) -> None:
        self._last_frame_ts = frame.timestamp
        try:
            analysis = self.analyzer.analyse(frame.image)
        except ModelOutputError as e:  # this frame tells nothing; the next may (or the card needs fixing)
            self._model_fault(str(e))
            return
        t1 = time.perf_counter()
        change = self.tracker.update(analysis.probs, frame.timestamp)
        t2 = time.perf_counter()
        self._faces_changed(len(analysis.faces), frame.timestamp)
        self._pace(len(analysis.faces), frame.timestamp)
        if change:
            self._mood_changed(change)
        self._publish_state()
        t3 = time.perf_counter()
        stage_ms = dict(analysis.stage_ms, capture=frame.capture_ms, track=(t2 - t1) * 1e3, publish=(t3 - t2) * 1e3)
        self.stats.record(stage_ms)
        self.notifier.watchdog()  # only after a frame really went through
        if self._tick_reason:
            self._tick_reason = ""
            self.notifier.status(self._status_line())

    def _model_fault(self, text: str) -> None:
        """Said once per distinct fault, not once per frame."""
        if text != self._last_model_fault:
            self._last_model_fault = text
            log.error("%s; frames are skipped while it lasts", text)
            self._publish("event", {"type": "error", "component": "model", "message": text})

    def _idle(self, tick: Tick) -> None:
        if tick.reason != "stalled":
            self.notifier.watchdog()  # paused or deliberately retrying: the loop is healthy
        text = {"paused": "paused (privacy): camera released", "retrying": "camera unavailable, retrying",
                "stalled": "camera stalled: no frame within read_timeout_s"}[tick.reason]
        changed, self._tick_reason = tick.reason != self._tick_reason, tick.reason
        if changed:
            self.notifier.status(text)
            if tick.reason == "stalled":
                log.warning(text)
        # every failed open (already spaced by the backoff) is reported, so a broker that was
        # away for the first one, or a late subscriber, still hears about it
        if tick.reason == "retrying" or (changed and tick.reason == "stalled"):
            self._publish("event", {"type": "error", "component": "camera", "message": text})

    def _faces_changed(self, faces: int, t: float) -> None:
        if (faces > 0) != (self.faces > 0):
            self._publish("event", {"type": "face_found" if faces else "face_lost", "faces": faces})
        self.faces = faces
        last_seen = self.tracker.last_face_at if self.tracker.last_face_at is not None else 0.0
        self.recommender.on_face_presence(faces > 0, 0.0 if faces else t - last_seen)

    def _pace(self, faces: int, t: float) -> None:
        idle = self.backoff.idle(faces, t)
        if idle != self.camera.idle:
            self.camera.idle = idle
            log.info("%s: analysing %.1f frames/s", "face in view" if faces else
                     f"nobody in view for {self.config.camera.idle_after_s:g} s", self.camera.fps)

    def _mood_changed(self, change: MoodChange) -> None:
        self._mood_since_wall = time.time()
        log.info("mood %s -> %s (%.0f%%, %s held %.1f s)", change.previous, change.mood, change.confidence * 100,
                 change.previous, change.held_for_s,
                 extra={"MOOD": change.mood, "CONFIDENCE": f"{change.confidence:.2f}", "COMPONENT": "tracker"})
        self._publish("event", {"type": "mood_changed", "from": change.previous, "to": change.mood,
                                "confidence": round(change.confidence, 3), "held_for_s": round(change.held_for_s, 2)})
        self.recommender.on_mood_changed(change.mood, change.confidence)
        self.notifier.status(self._status_line())

    def _status_line(self) -> str:
        return f"mood={self.tracker.mood} {self.stats.fps:.1f} fps"

    # -- publishing -------------------------------------------------------------------------
    def _publish(self, kind: str, payload: dict) -> None:
        """The one way out: recommendation worker and frame loop alike (payloads.stamp adds schema/time)."""
        if self.link:
            self.link.publish(kind, payloads.stamp(payload))

    def _publish_state(self, force: bool = False) -> None:
        t = self.tracker
        key = (t.mood, self.faces, self.camera.paused.is_set(), self.recommender.policy, self.recommender.autoplay)
        now = time.monotonic()
        scores = t.scores
        moved = self._last_state is None or any(abs(scores[k] - self._last_state[1].get(k, 0)) >= SCORE_CHANGE
                                                for k in scores)
        if not force and self._last_state and key == self._last_state[0] and not (
                moved and now - self._last_state_at >= STATE_REFRESH_S):
            return
        self._last_state, self._last_state_at = (key, scores), now
        self._publish("state", payloads.state(t.mood, t.confidence, _all_moods(scores), self.faces,
                                              self._mood_since_wall, self.camera.paused.is_set(),
                                              self.recommender.policy, self.recommender.autoplay))

    def _publish_discovery(self) -> None:
        if not self.config.mqtt.discovery:
            return
        for topic, cfg in homeassistant.discovery_messages(self.config.device_id, self.link.base,
                                                           self.config.mqtt.discovery_prefix, __version__):
            self.link.publish_raw(topic, payloads.encode(cfg), qos=1, retain=True)

    def _maybe_publish_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        at_start = self._stats_at_start and self.link is not None and self.link.connected.is_set()
        if not (force or at_start) and now - self._last_stats_at < self.config.mqtt.stats_interval_s:
            return
        self._stats_at_start = self._stats_at_start and not at_start
        self._last_stats_at = now
        fields = self.stats.snapshot()
        fields.update(dropped_frames=self.camera.dropped, rate_fps=round(self.camera.fps, 2),
                      mqtt_reconnects=self.link.reconnects if self.link else 0,
                      mqtt_dropped=self.link.dropped if self.link else 0,
                      recommendations=self.recommender.stats())
        self._publish("stats", payloads.stats(**fields))

    # -- commands and reload (applied between frames) ---------------------------------------
    def _queue_command(self, message: Incoming) -> None:
        """paho thread: never blocks; a flood beyond the queue is dropped and counted."""
        try:
            self.commands.put_nowait(message)
        except queue.Full:
            self.commands_dropped += 1

    def _handle_pending(self) -> None:
        if self.reload_requested.is_set():
            self.reload_requested.clear()
            self._reload()
        if self.commands_dropped != self._dropped_reported:
            dropped, self._dropped_reported = self.commands_dropped - self._dropped_reported, self.commands_dropped
            text = f"{dropped} command(s) dropped: more than {self.commands.maxsize} arrived between two frames"
            log.warning(text)
            self._publish("event", {"type": "error", "component": "commands", "message": text})
        results = []
        for _ in range(self.commands.maxsize):
            try:
                message = self.commands.get_nowait()
            except queue.Empty:
                break
            results.append(self._run_command(message))
        if results:
            # saved before anyone hears of it, so a crash right after `paused: true` still keeps the pause;
            # once per batch: a burst of commands costs one write
            self._save_settings()
            for result in results:
                self._publish("event", result)
            self._publish_state(force=True)

    def _run_command(self, message: Incoming) -> dict:
        """Apply one command; returns its result event (published once the batch is saved)."""
        try:
            command = parse_command(message.name, message.payload, message.size)
        except CommandError as e:  # e.command: the name, shortened if it was junk
            log.warning("rejected command %s: %s", e.command, e.message)
            return {"type": "command", "command": e.command, "ok": False, "value": None, "message": e.message}
        self._apply(command)
        return {"type": "command", "command": command.name, "ok": True, "value": command.value,
                "message": applied_message(command)}

    def _apply(self, command: Command) -> None:
        if command.setting == "paused":
            if command.value:
                self._privacy_pause()
            else:
                self.camera.paused.clear()
            log.info("privacy pause %s", "on: camera released" if command.value else "off: capturing again")
        elif command.setting == "policy":
            self.recommender.set_policy(command.value)
        elif command.setting == "autoplay":
            self.recommender.set_autoplay(command.value)
        elif command.name == "snapshot_stats":
            self._maybe_publish_stats(force=True)

    def _privacy_pause(self) -> None:
        """Release the camera and forget what was seen: while paused, state says no_face and 0 faces."""
        self.camera.paused.set()
        if self.faces:
            self._publish("event", {"type": "face_lost", "faces": 0})
            self.faces = 0
        change = self.tracker.reset(self._last_frame_ts)
        if change:
            self._mood_changed(change)

    # -- settings that outlive a restart ----------------------------------------------------
    def _settings(self) -> Settings:
        return Settings(self.camera.paused.is_set(), self.recommender.policy, self.recommender.autoplay)

    def _restore_settings(self) -> None:
        """Runs before the camera is opened: a privacy pause from before a restart still holds."""
        rc = self.config.recommendations
        saved = self.settings_file.restore(Settings(False, rc.policy, rc.autoplay))
        if saved.paused:
            self.camera.paused.set()
        if saved.policy != self.recommender.policy:
            self.recommender.set_policy(saved.policy)
        if saved.autoplay != self.recommender.autoplay:
            self.recommender.set_autoplay(saved.autoplay)

    def _save_settings(self) -> None:
        try:
            self.settings_file.save(self._settings())
        except OSError as e:
            text = (f"cannot save settings to {self.settings_file.path} ({e.strerror or e}): "
                    "they will not survive a restart")
            log.error(text)
            self._publish("event", {"type": "error", "component": "state", "message": text})

    def _reload(self) -> None:
        """SIGHUP: mood, detector, fps and log level change live; other sections need a restart."""
        self.notifier.reloading()
        try:  # everything is validated and built first: a bad part must not leave a half-swapped daemon
            new = config_module.load(self.config.source_path)
            detector = make_detector(new.detector)
        except MoodcastError as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            self.notifier.ready(self._status_line())
            return
        self._swap_in(new, detector)
        self.notifier.ready(self._status_line())

    def _swap_in(self, new: Config, detector) -> None:
        """Apply a validated configuration; nothing in here may fail."""
        live = ("mood", "detector", "logging")
        needs_restart = [name for name in ("model", "mqtt", "state", "spotify", "youtube", "recommendations")
                         if getattr(new, name, None) != getattr(self.config, name, None)]
        camera_changed = {k for k, v in vars(new.camera).items() if getattr(self.config.camera, k) != v} - LIVE_CAMERA
        self.tracker.cfg = new.mood
        self.analyzer.detector = detector
        self.analyzer.faces_mode = new.detector.faces
        self.config.camera.max_fps = new.camera.max_fps
        self.config.camera.idle_after_s, self.config.camera.idle_fps = new.camera.idle_after_s, new.camera.idle_fps
        setup_logging(new.logging.level)
        for name in live:
            setattr(self.config, name, getattr(new, name))
        if camera_changed:
            needs_restart.append("camera." + ",".join(sorted(camera_changed)))
        log.info("configuration reloaded%s", f"; restart needed for: {', '.join(needs_restart)}" if needs_restart else "")


def applied_message(command: Command) -> str:
    """The `message` of an accepted command's event, e.g. "policy set to uplift" (docs/mqtt.md)."""
    if command.setting is None:
        return {"snapshot_stats": "stats published"}.get(command.name, f"{command.name} done")
    value = ("on" if command.value else "off") if isinstance(command.value, bool) else command.value
    return {"paused": f"privacy pause {value}", "autoplay": f"autoplay {value}"}.get(
        command.setting, f"{command.setting} set to {value}")


def _all_moods(scores: dict[str, float]) -> dict[str, float]:
    return {mood: scores.get(mood, 0.0) for mood in config_module.MOODS}
