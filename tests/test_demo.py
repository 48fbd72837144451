"""README command 1: `moodcast demo` (what `make run` starts) shows live MQTT messages from the
bundled samples through an embedded broker, with no camera and no broker installed."""

import re
import subprocess
import sys

from bench.mosquitto import Subscriber
from moodcast.cli.watch import describe
from moodcast.mqtt.homeassistant import ENTITIES
from tests.daemon_process import write_config
from tests.media import SAMPLES


def test_demo_shows_several_moods_their_recommendations_and_the_discovery_it_promises(tmp_path):
    # The demo's own data, analysed at 2 fps instead of 5: a round of the three samples (9 s of replay,
    # no_face 2 s into the cup) then needs 18 frames, which even a loaded machine manages in 24 s.
    config = tmp_path / "demo.toml"
    config.write_text((SAMPLES / "demo.toml").read_text() + "\n[camera]\nmax_fps = 2.0\n")
    result = subprocess.run([sys.executable, "-m", "moodcast.cli", "demo", str(config), "--duration", "24"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "embedded MQTT broker on 127.0.0.1" in result.stdout and "demo data" in result.stdout
    lines = result.stdout.splitlines()
    assert any("availability" in line and line.rstrip().endswith("online") for line in lines)
    assert any("face_found" in line for line in lines) and any("face_lost" in line for line in lines)
    assert lines[-1].rstrip().endswith("offline")  # the daemon's clean goodbye, seen by the viewer
    moods = re.findall(r"mood_changed \w+ -> (\w+)", result.stdout)
    assert len(set(moods) - {"no_face", "uncertain"}) >= 2 and "no_face" in moods, moods
    recommended = re.findall(r"recommendation for (\w+) \(\w+\): music: (\S+)", result.stdout)
    assert {mood for mood, _ in recommended} >= set(moods) - {"no_face", "uncertain"}, recommended
    assert all(link.startswith("https://open.spotify.com/playlist/") for _, link in recommended)
    discovered = re.findall(r" HA +discovery +(\w+\.moodcast_\w+) ", result.stdout)
    assert len(discovered) == len(ENTITIES) and any(d.endswith("_mood") for d in discovered), discovered


def test_watch_lines_are_readable():
    line = describe("moodcast/kitchen/event",
                    b'{"schema":1,"type":"mood_changed","from":"neutral","to":"happy","confidence":0.83}')
    assert line.endswith("kitchen    event          mood_changed neutral -> happy (83%)")
    assert describe("moodcast/kitchen/availability", b"online").endswith("online")
    assert describe("moodcast/kitchen/state", b"").endswith("(cleared)")
    assert describe("moodcast/kitchen/state", b'{"mood":"happy","confidence":0.9,"faces":1,"paused":true}'
                    ).endswith("happy 90%  (1 face(s) in view) [paused]")
    assert describe("homeassistant/sensor/moodcast_kitchen/mood/config",
                    b'{"name":"Mood","default_entity_id":"sensor.moodcast_kitchen_mood"}'
                    ).endswith('HA         discovery      sensor.moodcast_kitchen_mood "Mood"')
    assert describe("home/ha-discovery/sensor/moodcast_kitchen/mood/config", b"").endswith(
        "HA         discovery      sensor removed")  # a discovery prefix of two levels


def test_watch_says_why_mood_and_faces_differ_for_a_moment():
    # Not stale fields: `faces` is the last frame, `mood` waits min_dwell_s / no_face_after_s on purpose.
    settling = describe("moodcast/k/state", b'{"mood":"no_face","confidence":0,"faces":1}')
    held = describe("moodcast/k/state", b'{"mood":"happy","confidence":1.0,"faces":0}')
    assert settling.endswith("no_face  (1 face(s) in view, mood settling)")
    assert held.endswith("happy 100%  (nobody in view, mood held for a moment)")


def test_stats_are_published_once_at_start(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, mqtt={"stats_interval_s": 3600.0},
                          camera={"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "loop": True})
    with Subscriber(mosquitto, ["moodcast/testcam/stats"]) as sub, daemon_process(config) as daemon:
        stats = sub.wait_for("moodcast/testcam/stats", timeout=120).json()
        assert daemon.running()
    assert stats["schema"] == 1 and "fps" in stats and "cpu_percent" in stats
