"""`moodcast demo` (README command 1): the real daemon on bundled sample faces, an embedded broker
on 127.0.0.1, and a live view of every message it publishes. No camera or broker needed."""

from __future__ import annotations

import threading
import time
from importlib import resources

from moodcast import config
from moodcast.cli.watch import watch
from moodcast.logs import setup_logging
from moodcast.mqtt.embedded_broker import EmbeddedBroker
from moodcast.service.daemon import Daemon


def run_demo(config_path: str | None, duration: float) -> int:
    samples = str(resources.files("moodcast") / "samples")
    path = config_path or f"{samples}/demo.toml"  # demo data: public playlists per mood
    stats_interval_s = min(config.load(path).mqtt.stats_interval_s, 10.0)  # the file is checked on its own first
    broker = EmbeddedBroker().start()
    cfg = config.load(path, {
        "camera": {"source": "replay", "path": samples, "loop": True, "realtime": True},
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker.port, "username": "",
                 "stats_interval_s": stats_interval_s, "tls": {"enabled": False}},
    })
    setup_logging(cfg.logging.level)
    print(f"moodcast demo: replaying the bundled sample photos ({samples}) in a loop, "
          f"{cfg.camera.image_seconds:g} s each:\na smiling portrait, the same with the smile blurred, a coffee cup. "
          f"They go through an embedded MQTT broker on 127.0.0.1:{broker.port}.\nBelow is every message "
          "Home Assistant would receive: its discovery configs, then state, events, recommendations and stats.\n"
          f"The recommendations come from demo data ({cfg.source_path}), not from your config. Ctrl-C stops.\n",
          flush=True)
    topics = [cfg.topics.this_device, cfg.topics.discovery_configs]
    stop_watch = threading.Event()
    viewer = threading.Thread(target=watch, args=(cfg.mqtt, topics, stop_watch),
                              kwargs={"out": lambda line: print(line, flush=True)}, daemon=True)
    viewer.start()
    daemon = Daemon(cfg)
    if duration:
        threading.Timer(duration, daemon.stop_event.set).start()
    try:
        return daemon.run()
    finally:
        time.sleep(0.5)  # let the viewer print the daemon's last words (availability: offline)
        stop_watch.set()
        viewer.join(3)
        broker.stop()
