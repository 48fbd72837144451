"""A room's mood with several people in view: each face followed by the detector's track numbers and smoothed
on its own; the largest, majority and any_negative policies on scripted sequences and on real photos."""

from __future__ import annotations

import signal

import cv2
import numpy as np
import pytest
from jsonschema import Draft202012Validator

from bench.mosquitto import Subscriber
from moodcast.config import DetectorConfig, MoodConfig
from moodcast.labels import MOODS, NO_FACE
from moodcast.mqtt import payloads
from moodcast.service.room import ROOM_POLICIES, RoomTracker, SeenFace, make_tracker
from moodcast.service.tracker import MoodTracker
from moodcast.vision.analyzer import Analyzer
from moodcast.vision.classifier import EmotionClassifier
from moodcast.vision.detector import make_detector
from tests.daemon_process import STARTUP, STOP, write_config
from tests.media import FRAMES, needs_frames

STATE = Draft202012Validator(payloads.load_schema("state"))


def probs(mood: str, p: float = 0.9) -> np.ndarray:
    v = np.full(len(MOODS), (1 - p) / (len(MOODS) - 1), np.float32)
    v[MOODS.index(mood)] = p
    return v


def play(room: RoomTracker, frames: list[list[SeenFace]], t0: float = 0.0, fps: float = 5.0):
    """Feed scripted frames; returns (last time, the room's changes)."""
    changes = []
    t = t0
    for i, faces in enumerate(frames):
        t = t0 + i / fps
        change = room.update(faces, t)
        if change:
            changes.append(change.mood)
    return t, changes


def a_room(policy: str) -> RoomTracker:
    return RoomTracker(MoodConfig(room=policy), MOODS)


def the_state(room: RoomTracker) -> dict:
    body = payloads.state(room.mood, room.confidence, room.scores, 3, 0.0, False, "uplift", False, now=1.0)
    body["room"] = room.state().body()
    STATE.validate(body)
    return body["room"]


# -- scripted sequences ---------------------------------------------------------------------------------

FAMILY = [SeenFace(1, 200 * 200, probs("happy")), SeenFace(2, 120 * 120, probs("happy")),
          SeenFace(3, 90 * 90, probs("sad"))]


@pytest.mark.parametrize("policy, mood", [("largest", "happy"), ("majority", "happy"), ("any_negative", "sad")])
def test_each_policy_on_a_family_of_three(policy, mood):
    room = a_room(policy)
    _, changes = play(room, [FAMILY] * 10)
    assert changes == [mood] and room.mood == mood
    assert room.confidence == pytest.approx(0.9, abs=1e-3)
    state = the_state(room)
    assert state == {"policy": policy, "moods": {"largest": "happy", "majority": "happy", "any_negative": "sad"},
                     "face_moods": ["happy", "happy", "sad"]}


def test_each_face_is_smoothed_and_settled_on_its_own():
    room = a_room("any_negative")
    # face 3 looks sad for two frames only (under min_dwell_s): no face holds a negative mood steadily
    frames = [FAMILY[:2] + [SeenFace(3, 8100, probs("sad" if i in (4, 5) else "neutral"))] for i in range(12)]
    _, changes = play(room, frames)
    assert changes == ["happy"] and room.state().face_moods == ("happy", "happy", "neutral")


def test_someone_who_leaves_counts_until_no_face_after_s_and_is_then_forgotten():
    room = a_room("any_negative")
    t, _ = play(room, [FAMILY] * 10)
    t, changes = play(room, [FAMILY[:2]] * 15, t0=t + 0.2)  # 3 s without the sad face
    assert changes == ["happy"]  # after no_face_after_s = 2 s, not at once
    assert room.state().face_moods == ("happy", "happy")
    _, changes = play(room, [[]] * 15, t0=t + 0.2)
    assert changes == [NO_FACE] and room.state().face_moods == ()


def test_majority_ties_do_not_flip_and_the_largest_face_changes_only_when_clearly_larger():
    room = a_room("majority")
    play(room, [[SeenFace(1, 10000, probs("neutral")), SeenFace(2, 9000, probs("surprise"))]] * 10)
    assert room.mood == "neutral"  # the tie goes to the larger face
    _, changes = play(room, [[SeenFace(1, 9000, probs("neutral")), SeenFace(2, 10000, probs("surprise"))]] * 10,
                      t0=3.0)
    assert changes == []  # still a tie: the room keeps its mood
    largest = a_room("largest")
    swapping = [[SeenFace(1, 10000 if i % 2 else 10900, probs("neutral")),
                 SeenFace(2, 10900 if i % 2 else 10000, probs("sad"))] for i in range(20)]
    _, changes = play(largest, swapping)
    assert len(changes) == 1  # faces of about one size: no flicker between them
    _, changes = play(largest, [[SeenFace(1, 5000, probs("neutral")), SeenFace(2, 20000, probs("sad"))]] * 10,
                      t0=5.0)
    assert largest.mood == "sad"


def test_a_privacy_pause_forgets_every_face():
    room = a_room("majority")
    play(room, [FAMILY] * 10)
    change = room.reset(9.0)
    assert change is not None and change.mood == NO_FACE and room.state().face_moods == ()
    assert room.scores == dict.fromkeys(MOODS, 0.0) and room.confidence == 0.0


def test_a_reload_changes_the_policy_from_the_next_frame():
    room = a_room("largest")
    t, _ = play(room, [FAMILY] * 10)
    room.reconfigure(MoodConfig(room="any_negative"))()
    assert room.update(FAMILY, t + 0.2).mood == "sad"


def test_largest_keeps_the_single_face_tracker():
    assert isinstance(make_tracker("largest", MoodConfig(), MOODS), MoodTracker)
    assert isinstance(make_tracker("all", MoodConfig(), MOODS), RoomTracker)


# -- real photos --------------------------------------------------------------------------------------

def tile(*parts: tuple[str | None, int]) -> np.ndarray:
    """Real photos side by side, each scaled to `height` and bottom-aligned; None leaves its place empty
    (someone left), so the others stay where they were."""
    images = []
    for name, height in parts:
        image = cv2.imread(str(FRAMES / (name or "angry_man.jpg")))
        image = cv2.resize(image, None, fx=height / image.shape[0], fy=height / image.shape[0],
                           interpolation=cv2.INTER_AREA)
        if name is None:
            image[:] = 128
        images.append(cv2.copyMakeBorder(image, 420 - height, 0, 0, 0, cv2.BORDER_CONSTANT, value=(128, 128, 128)))
    return cv2.hconcat(images)


@pytest.fixture(scope="module")
def classifier():
    return EmotionClassifier()


def room_on(analyzer: Analyzer, frames: list[np.ndarray], room: RoomTracker, t0: float = 0.0):
    """The daemon's path: the detector follows the faces, each is classified, the room decides."""
    tracks = []
    for i, frame in enumerate(frames):
        analysis = analyzer.analyse(frame)
        tracks.append(sorted(c.face.track for c in analysis.classified))
        room.update([SeenFace(c.face.track, c.face.area, c.scores.probs) for c in analysis.classified], t0 + i / 5)
    return tracks


def an_analyzer(classifier) -> Analyzer:
    return Analyzer(make_detector(DetectorConfig()), classifier, "all")


@needs_frames
def test_real_group_photos_are_followed_face_by_face(classifier):
    for name, faces in (("multi_kit_with_rose.jpg", 2), ("multi_two_people.jpg", 2),
                        ("happy_obama_and_biden.jpg", 2)):
        frame = cv2.imread(str(FRAMES / name))
        room = a_room("majority")
        tracks = room_on(an_analyzer(classifier), [frame] * 12, room)
        assert all(t == tracks[0] for t in tracks) and len(tracks[0]) == faces, (name, tracks)
        state = the_state(room)
        assert len(state["face_moods"]) == faces, (name, state)
        # a face may still be settling (one in multi_two_people reads neutral and sad by turns): moods only count
        moods = [m for m in state["face_moods"] if m in MOODS]
        assert moods, (name, state)
        assert state["moods"]["largest"] == state["face_moods"][0]
        assert moods.count(state["moods"]["majority"]) == max(moods.count(m) for m in moods), (name, state)


@needs_frames
@pytest.mark.parametrize("policy", ROOM_POLICIES)
def test_a_family_on_real_faces_and_the_angry_one_leaves(classifier, policy):
    family = tile(("happy_obama.jpg", 400), ("angry_man.jpg", 260), ("happy_alex_lacamoire.png", 400))
    left = tile(("happy_obama.jpg", 400), (None, 260), ("happy_alex_lacamoire.png", 400))
    analyzer, room = an_analyzer(classifier), a_room(policy)
    tracks = room_on(analyzer, [family] * 15, room)
    state = the_state(room)
    assert sorted(state["face_moods"]) == ["angry", "happy", "happy"], state
    assert all(t == tracks[0] for t in tracks) and len(tracks[0]) == 3  # three faces, the same three numbers
    assert state["moods"] == {"largest": "happy", "majority": "happy", "any_negative": "angry"}
    assert room.mood == state["moods"][policy]
    stayed = room_on(analyzer, [left] * 15, room, t0=3.0)
    assert all(len(t) == 2 and set(t) < set(tracks[0]) for t in stayed)  # the two who stayed keep their numbers
    assert room.mood == "happy" and the_state(room)["face_moods"] == ["happy", "happy"]


@needs_frames
def test_the_daemon_reports_the_room(tmp_path, mosquitto, daemon_process):
    photo = tmp_path / "family.png"
    cv2.imwrite(str(photo), tile(("happy_obama.jpg", 400), ("angry_man.jpg", 260), ("happy_alex_lacamoire.png", 400)))
    config = write_config(tmp_path / "config.toml", mosquitto, detector={"faces": "all"}, mood={"room": "any_negative"},
                          camera={"source": "replay", "path": str(photo), "realtime": True, "loop": True})
    with Subscriber(mosquitto, ["moodcast/testcam/state"]) as sub, daemon_process(config) as daemon:
        state = sub.wait_for("moodcast/testcam/state", lambda m: m.json()["mood"] == "angry", timeout=STARTUP).json()
        STATE.validate(state)
        assert state["faces"] == 3 and state["room"]["policy"] == "any_negative"
        assert state["room"]["moods"]["majority"] == "happy" and sorted(state["room"]["face_moods"]) == [
            "angry", "happy", "happy"]
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
