"""The daemon: camera -> analysis -> mood tracker -> MQTT and recommendations, one frame at a time.

Everything runs on the main thread except paho's network thread, the camera reader thread and
the recommendation worker; they hand data to this loop through thread-safe queues and events,
so the frame loop never waits on the network.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from typing import Any

from moodcast import __version__
from moodcast import config as config_module
from moodcast.config import Config
from moodcast.errors import MoodcastError
from moodcast.labels import MOODS
from moodcast.logs import RateLimitedLog, setup_logging
from moodcast.mqtt.commands import Batch, Command, CommandInbox, Rejected, Result, Setting
from moodcast.mqtt.link import MqttLink
from moodcast.mqtt.payloads import Event, State, Stats, command_event, error_event, faces_event, mood_changed
from moodcast.mqtt.publisher import StatePublisher
from moodcast.recommend.service import RecommendationService
from moodcast.service.heap import return_large_buffers
from moodcast.service.notify import Notifier
from moodcast.service.settings import Settings, SettingsFile
from moodcast.service.signals import EarlySignals
from moodcast.service.stats import PipelineStats
from moodcast.service.tracker import MoodChange, MoodTracker
from moodcast.util import remove_stale_temporaries
from moodcast.vision.analyzer import Analyzer
from moodcast.vision.camera import Camera, Frame, IdleBackoff, Tick, TickReason
from moodcast.vision.classifier import EmotionClassifier, ModelOutputError
from moodcast.vision.detector import make_detector

log = logging.getLogger("moodcast")
RESTART_SECTIONS = ("model", "mqtt", "state", "spotify", "youtube", "recommendations")  # a reload only names them
IDLE_TEXT = {TickReason.PAUSED: "paused (privacy): camera released",
             TickReason.RETRYING: "camera unavailable, retrying",
             TickReason.STALLED: "camera stalled: no frame within read_timeout_s"}


class Daemon:
    def __init__(self, config: Config, signals: EarlySignals | None = None):
        self.config = config
        return_large_buffers()  # a flood of oversized commands must not grow the daemon for good
        # `moodcast run` passes the handlers it installed first (service/signals.py): a signal during start-up counts
        self.stop_event = signals.stop if signals else threading.Event()
        self.reload_requested = signals.reload if signals else threading.Event()
        self.notifier = Notifier()
        # commands come from whoever may publish on the broker: their lines are rate-limited, their events are not
        self._limited = RateLimitedLog(log, interval_s=60.0, burst=5)
        self.inbox = CommandInbox()
        self.classifier = EmotionClassifier(config.model.path or None, config.model.num_threads)
        self.analyzer = Analyzer(make_detector(config.detector), self.classifier, config.detector.faces)
        self.camera = Camera(config.camera, self.stop_event)
        self.camera.check()  # a replay that cannot play fails here, before `online` and READY
        self.backoff = IdleBackoff(config.camera)
        self.tracker = MoodTracker(config.mood, self.classifier.labels, start=0.0)
        self.stats = PipelineStats()
        self.link = MqttLink(config.mqtt, config.device_id, self.inbox.put) if config.mqtt.enabled else None
        self.out = StatePublisher(self.link, config.mqtt.stats_interval_s)
        self.recommender = RecommendationService(config, self.out.publish_body)
        for stale in remove_stale_temporaries(config.state_dir):  # a kill -9 in the middle of a save
            log.info("removed %s, left by a process that was killed while saving", stale)
        self.settings_file = SettingsFile(config.state_dir)
        self._restore_settings()
        # said once the broker is there: an event published before the first connection is dropped
        self._untold = [error_event("state", self.settings_file.problem)] if self.settings_file.problem else []
        self.faces = 0
        self._last_frame_ts = 0.0
        self._mood_since_wall = time.time()
        self._tick_reason: TickReason | None = None
        self._last_model_fault = ""

    # -- start and stop -------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        if self.link:
            self.link.start()
            if self.config.mqtt.discovery:
                self.out.discovery(self.config.device_id, self.config.mqtt.discovery_prefix, __version__)
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
            self._tick_reason = None
            self.notifier.status(self._status_line())

    def _model_fault(self, text: str) -> None:
        """Said once per distinct fault, not once per frame."""
        if text != self._last_model_fault:
            self._last_model_fault = text
            log.error("%s; frames are skipped while it lasts", text)
            self.out.publish(error_event("model", text))

    def _idle(self, tick: Tick) -> None:
        if tick.reason is not TickReason.STALLED:
            self.notifier.watchdog()  # paused or deliberately retrying: the loop is healthy
        text = IDLE_TEXT[tick.reason]
        changed, self._tick_reason = tick.reason != self._tick_reason, tick.reason
        if changed:
            self.notifier.status(text)
            if tick.reason is TickReason.STALLED:
                log.warning(text)
        # every failed open (already spaced by the backoff) is reported, so a broker that was
        # away for the first one, or a late subscriber, still hears about it
        if tick.reason is TickReason.RETRYING or (changed and tick.reason is TickReason.STALLED):
            self.out.publish(error_event("camera", text))

    def _faces_changed(self, faces: int, t: float) -> None:
        if (faces > 0) != (self.faces > 0):
            self.out.publish(faces_event(faces))
        self.faces = faces
        last_seen = self.tracker.last_face_at if self.tracker.last_face_at is not None else 0.0
        self.recommender.on_face_presence(faces > 0, 0.0 if faces else t - last_seen)

    def _pace(self, faces: int, t: float) -> None:
        idle = self.backoff.idle(faces, t)
        if idle != self.camera.idle:
            self.camera.idle = idle
            log.info("%s: analysing %.1f frames/s", "face in view" if faces else
                     f"nobody in view for {self.backoff.cfg.idle_after_s:g} s", self.camera.fps)

    def _mood_changed(self, change: MoodChange) -> None:
        self._mood_since_wall = time.time()
        log.info("mood %s -> %s (%.0f%%, %s held %.1f s)", change.previous, change.mood, change.confidence * 100,
                 change.previous, change.held_for_s,
                 extra={"MOOD": change.mood, "CONFIDENCE": f"{change.confidence:.2f}", "COMPONENT": "tracker"})
        self.out.publish(mood_changed(change.previous, change.mood, change.confidence, change.held_for_s))
        self.recommender.on_mood_changed(change.mood, change.confidence)
        self.notifier.status(self._status_line())

    def _status_line(self) -> str:
        return f"mood={self.tracker.mood} {self.stats.fps:.1f} fps"

    # -- publishing (self.out stamps and rate-limits) -----------------------------------------
    def _publish_state(self, force: bool = False) -> None:
        t = self.tracker
        self.out.state(State(t.mood, t.confidence, _all_moods(t.scores), self.faces, self._mood_since_wall,
                             self.camera.paused.is_set(), self.recommender.policy, self.recommender.autoplay), force)

    def _maybe_publish_stats(self, force: bool = False) -> None:
        if not self.out.stats_due(force):
            return
        fields: dict[str, Any] = self.stats.snapshot()
        fields.update(dropped_frames=self.camera.dropped, rate_fps=round(self.camera.fps, 2),
                      mqtt_reconnects=self.link.reconnects if self.link else 0,
                      mqtt_dropped=self.link.dropped if self.link else 0,
                      mqtt_denied=self.link.denied if self.link else 0,
                      recommendations=self.recommender.stats())
        self.out.publish(Stats(fields))

    # -- commands and reload (applied between frames) ---------------------------------------
    def _handle_pending(self) -> None:
        if self._untold and self.link and self.link.connected.is_set():
            for event in self._untold:
                self.out.publish(event)
            self._untold = []
        if self.reload_requested.is_set():
            self.reload_requested.clear()
            self._reload()
        dropped = self.inbox.newly_dropped()
        if dropped:
            text = (f"{dropped} command(s) dropped: more than {self.inbox.maxsize} arrived between two frames "
                    "(the newest value of each setting was still applied)")
            self._limited.warning("dropped", text)
            self.out.publish(error_event("commands", text))
        batch = self.inbox.take()
        if not batch.results and not batch.settings:
            return
        for command in batch.settings:  # the newest of each setting, once: the privacy pause first
            self._apply(command)
        # saved before anyone hears of it, so a crash right after `paused: true` still keeps the pause;
        # once per batch: a burst of commands costs one write
        self._save_settings()
        for result in batch.results:
            self.out.publish(self._result_event(result, batch))
        self._publish_state(force=True)

    def _result_event(self, result: Result, batch: Batch) -> Event:
        """The `command` event of one message; snapshot_stats is carried out here, in order."""
        if isinstance(result, Rejected):
            self._limited.warning("rejected", "rejected command %s: %s", result.command, result.message)
            return command_event(result.command, False, None, result.message)
        if batch.superseded(result):
            return command_event(result.name, True, result.value, f"{applied_message(result)}, then superseded "
                                                                  "by a newer command")
        if result.setting is None:
            self._apply(result)
        return command_event(result.name, True, result.value, applied_message(result))

    def _apply(self, command: Command) -> None:
        if command.setting is Setting.PAUSED:
            if command.switch:
                self._privacy_pause()
            else:
                self.camera.paused.clear()
            self._limited.info("pause", "privacy pause %s",
                               "on: camera released" if command.switch else "off: capturing again")
        elif command.setting is Setting.POLICY:
            self.recommender.set_policy(command.policy)
        elif command.setting is Setting.AUTOPLAY:
            self.recommender.set_autoplay(command.switch)
        elif command.name == "snapshot_stats":
            self._maybe_publish_stats(force=True)

    def _privacy_pause(self) -> None:
        """Release the camera and forget what was seen: while paused, state says no_face and 0 faces."""
        self.camera.paused.set()
        if self.faces:
            self.out.publish(faces_event(0))
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
            self._limited.error("save", text)
            self.out.publish(error_event("state", text))

    def _reload(self) -> None:
        """SIGHUP: mood, detector, the camera's rates and the log level change live; other sections need a restart."""
        self.notifier.reloading()
        try:  # everything is validated and built first: a bad part must not leave a half-swapped daemon
            new = config_module.load(self.config.source_path)
            swaps = [self.tracker.reconfigure(new.mood), self.analyzer.reconfigure(new.detector),
                     self.camera.reconfigure(new.camera), self.backoff.reconfigure(new.camera)]
        except MoodcastError as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            self.notifier.ready(self._status_line())
            return
        needs_restart = [name for name in RESTART_SECTIONS if getattr(new, name) != getattr(self.config, name)]
        camera_keys = self.camera.restart_needed(new.camera)
        if camera_keys:
            needs_restart.append("camera." + ",".join(camera_keys))
        for swap in swaps:  # nothing from here on may fail
            swap()
        setup_logging(new.logging.level)
        self.config = dataclasses.replace(self.config, mood=new.mood, detector=new.detector, logging=new.logging,
                                          camera=self.camera.cfg)
        log.info("configuration reloaded%s",
                 f"; restart needed for: {', '.join(needs_restart)}" if needs_restart else "")
        self.notifier.ready(self._status_line())


def applied_message(command: Command) -> str:
    """The `message` of an accepted command's event, e.g. "policy set to uplift" (docs/mqtt.md)."""
    if command.setting is None:
        return {"snapshot_stats": "stats published"}.get(command.name, f"{command.name} done")
    value = ("on" if command.value else "off") if isinstance(command.value, bool) else str(command.value)
    return {"paused": f"privacy pause {value}", "autoplay": f"autoplay {value}"}.get(
        command.setting, f"{command.setting} set to {value}")


def _all_moods(scores: dict[str, float]) -> dict[str, float]:
    return {mood: scores.get(mood, 0.0) for mood in MOODS}
