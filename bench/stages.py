"""Per-stage latency of the real pipeline objects, int8 vs float32, 1 vs 2 interpreter threads.

Every frame goes through each configuration in turn (rotating which goes first), so background
load that comes and goes hits all configurations alike. Stages are those of the daemon:
capture (JPEG decode, what a USB webcam's MJPEG costs), detect (colour conversion + Haar),
preprocess, classify (LiteRT), track (MoodTracker.update), publish (state payload + MQTT publish).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.stats import summary
from moodcast.config import DetectorConfig, MoodConfig, MqttConfig
from moodcast.labels import MOODS
from moodcast.mqtt import payloads
from moodcast.mqtt.link import MqttLink
from moodcast.service.stats import STAGES
from moodcast.service.tracker import MoodTracker
from moodcast.topics import Topics
from moodcast.vision.analyzer import Analyzer
from moodcast.vision.classifier import EmotionClassifier
from moodcast.vision.detector import make_detector

PERIOD_S = 0.2  # the default 5 analysed frames per second


@dataclass
class Config:
    name: str
    model: Path
    threads: int
    load_ms: float = 0.0
    first_invoke_ms: float = 0.0
    analyzer: Analyzer | None = None
    tracker: MoodTracker | None = None
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    total_ms: list[float] = field(default_factory=list)
    one_face_ms: list[float] = field(default_factory=list)  # detect+preprocess+classify, frames with exactly one face
    one_face_by_kind: dict[str, list[float]] = field(default_factory=dict)  # the same, per kind of frame


def load_config(name: str, model: Path, threads: int, detector: DetectorConfig | None = None) -> Config:
    """Load the model, timing the load and the first (allocating, warming) inference separately."""
    t0 = time.perf_counter()
    classifier = EmotionClassifier(model, threads)
    t1 = time.perf_counter()
    classifier.predict(np.zeros((48, 48, 1), np.float32))
    t2 = time.perf_counter()
    cfg = Config(name, model, threads, (t1 - t0) * 1e3, (t2 - t1) * 1e3)
    cfg.analyzer = Analyzer(make_detector(detector or DetectorConfig()), classifier)
    cfg.tracker = MoodTracker(MoodConfig(), classifier.labels)
    return cfg


def connect_publisher(host: str, port: int) -> MqttLink:
    mqtt = MqttConfig(host=host, port=port, discovery=False)
    link = MqttLink(mqtt, Topics(mqtt.prefix, "bench-stages"), lambda *_: None)
    link.start()
    if not link.connected.wait(10):
        raise RuntimeError(f"bench: cannot connect to the MQTT broker at {host}:{port}")
    return link


def run_frame(cfg: Config, jpeg: bytes, t: float, link: MqttLink | None, kind: str = "") -> None:
    t0 = time.perf_counter()
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    t1 = time.perf_counter()
    analysis = cfg.analyzer.analyse(image)
    t2 = time.perf_counter()
    cfg.tracker.update(analysis.probs, t)
    t3 = time.perf_counter()
    if link:
        tr = cfg.tracker
        scores = {m: tr.scores.get(m, 0.0) for m in MOODS}
        link.publish("state", payloads.state(tr.mood, tr.confidence, scores, len(analysis.faces), time.time(),
                                             False, "off", False))
    t4 = time.perf_counter()
    ms = dict(analysis.stage_ms, capture=(t1 - t0) * 1e3, track=(t3 - t2) * 1e3, publish=(t4 - t3) * 1e3)
    for stage in STAGES:
        cfg.stage_ms[stage].append(ms[stage])
    cfg.total_ms.append(sum(ms[s] for s in STAGES))
    if len(analysis.faces) == 1:
        cfg.one_face_ms.append(ms["detect"] + ms["preprocess"] + ms["classify"])
        cfg.one_face_by_kind.setdefault(kind, []).append(cfg.one_face_ms[-1])


def run_stages(configs: list[Config], frames: list[tuple[bytes, str]], link: MqttLink | None) -> None:
    """`frames`: (JPEG, kind) where kind says what the frame is (synthetic scene or real photo)."""
    for i, (jpeg, kind) in enumerate(frames):
        for k in range(len(configs)):
            run_frame(configs[(i + k) % len(configs)], jpeg, i * PERIOD_S, link, kind)


def report(cfg: Config) -> dict:
    total_s = sum(cfg.total_ms) / 1e3
    return {
        "model": cfg.model.name, "threads": cfg.threads,
        "model_load_ms": round(cfg.load_ms, 1), "first_invoke_ms": round(cfg.first_invoke_ms, 1),
        "stages_ms": {s: summary(cfg.stage_ms[s], 3) for s in STAGES},
        "frame_ms": summary(cfg.total_ms),
        "one_face_detect_classify_ms": summary(cfg.one_face_ms),
        "one_face_detect_classify_ms_by_kind": {k: summary(v) for k, v in cfg.one_face_by_kind.items()},
        "fps_unpaced": round(len(cfg.total_ms) / total_s, 1) if total_s else 0.0,
    }
