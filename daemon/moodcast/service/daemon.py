"""The daemon: camera -> analysis -> mood tracker -> MQTT and recommendations, one frame at a time.

Everything runs on the main thread except four: paho's network thread (commands in,
acknowledgements), the Outbox's sender (mqtt/outbox.py: hands messages to paho), the camera
reader (vision/camera.py: keeps the newest frame of a live camera) and the recommendation worker
(recommend/service.py: Spotify and YouTube calls). They and this loop hand data to each other
through thread-safe queues and events, so the frame loop never waits on the network or a driver.
docs/architecture.md draws the threads and follows one frame and one command through them.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from moodcast import __version__
from moodcast import config as config_module
from moodcast.config import Config
from moodcast.errors import MoodcastError
from moodcast.labels import MOODS, NO_FACE
from moodcast.logs import RateLimitedLog, setup_logging
from moodcast.mqtt.commands import Batch, Command, CommandError, CommandInbox, Rejected, Result, Setting
from moodcast.mqtt.link import MqttLink
from moodcast.mqtt.payloads import Message, State, Stats, command_event, error_event, faces_event, mood_changed
from moodcast.mqtt.publisher import Publisher
from moodcast.recommend.service import RecommendationService
from moodcast.service.calibration import CalibrationRefused, Calibrator
from moodcast.service.heap import return_large_buffers
from moodcast.service.history import MoodHistory
from moodcast.service.notify import Notifier
from moodcast.service.room import RoomTracker, SeenFace, make_tracker
from moodcast.service.settings import Settings, SettingsFile
from moodcast.service.signals import EarlySignals
from moodcast.service.stats import PipelineStats
from moodcast.service.tracker import MoodChange
from moodcast.util import remove_stale_temporaries
from moodcast.vision.analyzer import Analysis, Analyzer
from moodcast.vision.calibration import Failure
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
        self.calibrator = Calibrator(self.classifier, config.state_dir, config.model)
        self.calibrator.restore()
        self.analyzer = Analyzer(make_detector(config.detector), self.classifier, config.detector.faces)
        self.camera = Camera(config.camera, self.stop_event)
        self.camera.check()  # a replay that cannot play fails here, before `online` and READY
        self.backoff = IdleBackoff(config.camera)
        self.tracker = make_tracker(config.detector.faces, config.mood, self.classifier.labels, start=0.0)
        self.stats = PipelineStats()
        self.link = MqttLink(config.mqtt, config.topics, self.inbox.put) if config.mqtt.enabled else None
        self.publisher = Publisher(self.link, config.mqtt.stats_interval_s)
        self.recommender = RecommendationService(config, self.publisher.publish_body)
        for stale in remove_stale_temporaries(config.state_dir):  # a kill -9 in the middle of a save
            log.info("removed %s, left by a process that was killed while saving", stale)
        self.settings_file = SettingsFile(config.state_dir)
        self._restore_settings()
        # said once the broker is there: an event published before the first connection is dropped
        self._untold = [error_event("state", self.settings_file.problem)] if self.settings_file.problem else []
        self.history = MoodHistory(config.state_dir)
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
                self.publisher.discovery(__version__)
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
                self._record_history()
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
        self.history.save()
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
        change = self._track(analysis, frame.timestamp)
        t2 = time.perf_counter()
        self._calibrate(analysis, frame.timestamp)
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

    def _track(self, analysis: Analysis, t: float) -> MoodChange | None:
        if isinstance(self.tracker, RoomTracker):  # every face on its own, followed by its track number
            return self.tracker.update([SeenFace(c.face.track, c.face.area, c.scores.probs)
                                        for c in analysis.classified], t)
        return self.tracker.update(analysis.probs, t)

    def _calibrate(self, analysis: Analysis, t: float) -> None:
        """Feed a running calibration the largest face's uncalibrated log-probabilities."""
        largest = analysis.classified[0].scores.log_probs if analysis.classified else None
        for event in self.calibrator.frame(len(analysis.faces), largest, t):
            self.publisher.publish(event)

    def _record_history(self) -> None:
        """Today's minutes per mood: counted every turn, published every minute, the summary at midnight.
        While the camera fails nothing is seen, whatever mood the state still shows."""
        seeing = self._tick_reason in (None, TickReason.PAUSED)
        for message in self.history.observe(self.tracker.mood if seeing else NO_FACE, seeing and self.faces > 0):
            self.publisher.publish(message)

    def _model_fault(self, text: str) -> None:
        """Said once per distinct fault, not once per frame."""
        if text != self._last_model_fault:
            self._last_model_fault = text
            log.error("%s; frames are skipped while it lasts", text)
            self.publisher.publish(error_event("model", text))

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
            self.publisher.publish(error_event("camera", text))
            for event in self.calibrator.abort(Failure.CAMERA, f"{text}: calibrate again once it is back"):
                self.publisher.publish(event)

    def _faces_changed(self, faces: int, t: float) -> None:
        if (faces > 0) != (self.faces > 0):
            self.publisher.publish(faces_event(faces))
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
        self.publisher.publish(mood_changed(change.previous, change.mood, change.confidence, change.held_for_s))
        self.recommender.on_mood_changed(change.mood, change.confidence)
        self.notifier.status(self._status_line())

    def _status_line(self) -> str:
        return f"mood={self.tracker.mood} {self.stats.fps:.1f} fps"

    # -- publishing (self.publisher stamps and rate-limits) -----------------------------------
    def _publish_state(self, force: bool = False) -> None:
        t = self.tracker
        room = t.state().body() if isinstance(t, RoomTracker) else None
        self.publisher.state(State(t.mood, t.confidence, _all_moods(t.scores), self.faces, self._mood_since_wall,
                             self.camera.paused.is_set(), self.recommender.policy, self.recommender.autoplay,
                             room), force)

    def _maybe_publish_stats(self, force: bool = False) -> None:
        if not self.publisher.stats_due(force):
            return
        fields: dict[str, Any] = self.stats.snapshot()
        fields.update(dropped_frames=self.camera.dropped, rate_fps=round(self.camera.fps, 2),
                      mqtt_reconnects=self.link.reconnects if self.link else 0,
                      mqtt_dropped=self.link.dropped if self.link else 0,
                      mqtt_denied=self.link.denied if self.link else 0,
                      recommendations=self.recommender.stats(), calibration=self.calibrator.stats())
        self.publisher.publish(Stats(fields))

    # -- commands and reload (applied between frames) ---------------------------------------
    def _handle_pending(self) -> None:
        if self._untold and self.link and self.link.connected.is_set():
            for event in self._untold:
                self.publisher.publish(event)
            self._untold = []
        if self.reload_requested.is_set():
            self.reload_requested.clear()
            self._reload()
        dropped = self.inbox.newly_dropped()
        if dropped:
            text = (f"{dropped} command(s) dropped: more than {self.inbox.maxsize} arrived between two frames "
                    "(the newest value of each setting was still applied)")
            self._limited.warning("dropped", text)
            self.publisher.publish(error_event("commands", text))
        batch = self.inbox.take()
        if not batch.results and not batch.settings:
            return
        # the newest of each setting, once, the privacy pause first: a calibration asked for in the same batch
        # as a pause is refused, whichever came first
        caused = [message for command in batch.settings for message in self._apply(command)]
        events = [event for result in batch.results for event in self._result_events(result, batch)]
        # saved before anyone hears of it, so a crash right after `paused: true` still keeps the pause;
        # once per batch: a burst of commands costs one write
        self._save_settings()
        for message in caused + events:
            self.publisher.publish(message)
        self._publish_state(force=True)

    def _result_events(self, result: Result, batch: Batch) -> list[Message]:
        """The `command` event of one message, and what an action (carried out here, in order) caused."""
        if isinstance(result, Rejected):
            return [self._rejected(result.command, result.message)]
        if batch.superseded(result):
            return [command_event(result.name, True, result.value, f"{applied_message(result)}, then superseded "
                                                                   "by a newer command")]
        caused: Sequence[Message] = []
        if result.setting is None:
            try:
                caused = self._apply(result)
            except CommandError as e:  # e.command: the name, shortened if it was junk
                return [self._rejected(e.command, e.message)]
        return [command_event(result.name, True, result.value, applied_message(result)), *caused]

    def _rejected(self, command: str, message: str) -> Message:
        self._limited.warning("rejected", "rejected command %s: %s", command, message)
        return command_event(command, False, None, message)

    def _apply(self, command: Command) -> Sequence[Message]:
        """Apply a valid command; returns what it caused to publish. CommandError when it cannot apply now."""
        if command.name == "calibrate":
            if self.camera.paused.is_set():
                raise CommandError("calibrate: the privacy pause is on (the camera is released)", command.name)
            try:
                return [self.calibrator.start()]
            except CalibrationRefused as e:
                raise CommandError(str(e), command.name) from None
        if command.name == "reset_calibration":
            return self.calibrator.reset()
        if command.setting is Setting.PAUSED:
            self._limited.info("pause", "privacy pause %s",
                               "on: camera released" if command.switch else "off: capturing again")
            if command.switch:
                self._privacy_pause()
                return self.calibrator.abort(Failure.PAUSED, "the privacy pause was switched on")
            self.camera.paused.clear()
        elif command.setting is Setting.POLICY:
            self.recommender.set_policy(command.policy)
        elif command.setting is Setting.AUTOPLAY:
            self.recommender.set_autoplay(command.switch)
        elif command.name == "snapshot_stats":
            self._maybe_publish_stats(force=True)
            return [self.history.publish(), self.history.snapshot()]
        return []

    def _privacy_pause(self) -> None:
        """Release the camera and forget what was seen: while paused, state says no_face and 0 faces."""
        self.camera.paused.set()
        if self.faces:
            self.publisher.publish(faces_event(0))
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
            self.publisher.publish(error_event("state", text))

    def _reload(self) -> None:
        """SIGHUP: mood, detector, the camera's rates and the log level change live; other sections need a restart."""
        self.notifier.reloading()
        try:  # everything is validated and built first: a bad part must not leave a half-swapped daemon
            new = config_module.load(self.config.source_path)
            swaps = [self._tracker_swap(new), self.analyzer.reconfigure(new.detector),
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
        self.calibrator.restore()  # `moodcast calibrate --camera` may have stored a new one
        setup_logging(new.logging.level)
        self.config = dataclasses.replace(self.config, mood=new.mood, detector=new.detector, logging=new.logging,
                                          camera=self.camera.cfg)
        log.info("configuration reloaded%s",
                 f"; restart needed for: {', '.join(needs_restart)}" if needs_restart else "")
        self.notifier.ready(self._status_line())


    def _tracker_swap(self, new: Config) -> Callable[[], None]:
        """A reload: new [mood] settings for the tracker; a new kind of tracker when [detector] faces changed."""
        if (new.detector.faces == "all") == isinstance(self.tracker, RoomTracker):
            return self.tracker.reconfigure(new.mood)
        tracker = make_tracker(new.detector.faces, new.mood, self.classifier.labels, self._last_frame_ts)

        def swap() -> None:
            change = self.tracker.reset(self._last_frame_ts)
            self.tracker = tracker
            if change:
                self._mood_changed(change)
        return swap


def applied_message(command: Command) -> str:
    """The `message` of an accepted command's event, e.g. "policy set to uplift" (docs/mqtt.md)."""
    if command.setting is None:
        return {"snapshot_stats": "stats published", "calibrate": "calibration started",
                "reset_calibration": "calibration reset"}.get(command.name, f"{command.name} done")
    value = ("on" if command.value else "off") if isinstance(command.value, bool) else str(command.value)
    return {"paused": f"privacy pause {value}", "autoplay": f"autoplay {value}"}.get(
        command.setting, f"{command.setting} set to {value}")


def _all_moods(scores: dict[str, float]) -> dict[str, float]:
    return {mood: scores.get(mood, 0.0) for mood in MOODS}
