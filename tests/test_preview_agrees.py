"""`moodcast preview` shows what `moodcast run` sees: on the same replayed photo, the faces and the
scores it prints are the ones the daemon publishes in its state, and so is the mood they make.

Photos larger than [camera] width x height are the ones that used to disagree: the daemon's replay
shrinks them to fit, as a camera set to that size would deliver them, and the preview did not
(and it detected on grayscale where the daemon detects on colour)."""

import re

import pytest

from bench.mosquitto import Subscriber
from tests.daemon_process import run_cli, write_config
from tests.media import FRAMES, SAMPLES, needs_frames

BASE = "moodcast/testcam"
PHOTOS = [
    pytest.param(SAMPLES / "01_astronaut.png", id="astronaut-512x512"),
    pytest.param(FRAMES / "multi_two_people.jpg", marks=needs_frames, id="two-people-1126x661"),
    pytest.param(FRAMES / "happy_obama_and_biden.jpg", marks=needs_frames, id="two-people-2000x1428"),
    pytest.param(FRAMES / "neutral_rose_leslie.jpg", marks=needs_frames, id="one-face-1280x799"),
]


def preview(tmp_path, config, photo) -> tuple[int, dict[str, float]]:
    """(faces found, the scores the mood tracker gets) as `moodcast preview` prints them."""
    result = run_cli("preview", "-c", str(config), "--replay", str(photo), "-o", str(tmp_path / "p.jpg"), timeout=600)
    assert result.returncode == 0, result.stderr
    faces = int(re.search(r"^\d+x\d+ frame, (\d+) face\(s\)$", result.stdout, re.M).group(1))
    scores = re.search(r"^scores the mood tracker gets: (.*)$", result.stdout, re.M)
    pairs = re.findall(r"(\w+) (\d+)%", scores.group(1)) if scores else []
    return faces, {mood: int(percent) / 100 for mood, percent in pairs}


def published_states(mosquitto, config, photo) -> list[dict]:
    """Every state `moodcast run` publishes while it replays the photo (3 s of it: 15 frames)."""
    with Subscriber(mosquitto, [f"{BASE}/state"]) as sub:
        result = run_cli("run", "-c", str(config), "--replay", str(photo), "--fast", timeout=600)
        assert result.returncode == 0, result.stderr
        sub.wait_for(f"{BASE}/state", lambda m: m.json()["mood"] != "no_face", timeout=10)
        return [m.json() for m in sub.messages[f"{BASE}/state"]]


@pytest.mark.parametrize("photo", PHOTOS)
def test_preview_shows_the_faces_and_scores_the_daemon_publishes(tmp_path, mosquitto, photo):
    config = write_config(tmp_path / "config.toml", mosquitto)
    faces, scores = preview(tmp_path, config, photo)
    states = published_states(mosquitto, config, photo)
    # the state after the first frame holds that frame's own scores (later frames follow the face
    # in a square around it, [detector] track_frames, and the smoothing mixes them in)
    first = next(state for state in states if state["faces"])
    assert faces == first["faces"]
    assert scores.keys() == first["scores"].keys()
    for mood, score in scores.items():  # the preview prints whole percent
        assert abs(score - first["scores"][mood]) <= 0.005 + 1e-9, (mood, score, first["scores"])
    assert states[-1]["mood"] == max(scores, key=scores.get)
