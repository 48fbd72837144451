"""The shipped model on real faces: the project's fixtures, and ../shared's photos when present.

Expectations are about the whole class of images, not single files, so a better model never
breaks them: happy is the clearest expression in FER2013 (and in these photos), so it is the one
held to the highest bar.
"""

import shutil

import cv2
import pytest

from bench.mosquitto import Subscriber
from moodcast.config import DetectorConfig
from moodcast.vision.classifier import EmotionClassifier
from moodcast.vision.detector import crop_face, make_detector
from tests.daemon_process import write_config
from tests.media import SAMPLES, fer_fixtures, labelled_frames, needs_frames


@pytest.fixture(scope="module")
def classifier():
    return EmotionClassifier()


def largest_face_mood(classifier, path):
    gray = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
    faces = sorted(make_detector(DetectorConfig()).detect(gray), key=lambda f: f.area, reverse=True)
    if not faces:
        return None
    probs = classifier.classify(crop_face(gray, faces[0]))
    return classifier.labels[int(probs.argmax())]


def test_fer2013_fixture_faces(classifier):
    results = {label: classifier.labels[int(classifier.classify(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)).argmax())]
               for p, label in fer_fixtures()}
    correct = sum(label == pred for label, pred in results.items())
    assert results["happy"] == "happy" and results["surprise"] == "surprise", results
    assert correct >= 5, results  # 7 clear faces (>= 9 of 10 annotators agree)


def test_bundled_sample_astronaut_is_happy(classifier):
    assert largest_face_mood(classifier, SAMPLES / "01_astronaut.png") == "happy"


@needs_frames
def test_real_photos(classifier):
    frames = labelled_frames()
    moods = {path.name: (label, largest_face_mood(classifier, path)) for path, label in frames}
    detected = [v for v in moods.values() if v[1] is not None]
    assert len(detected) >= len(frames) - 2, moods  # Haar misses at most the two occluded/odd ones
    happy = [pred for label, pred in moods.values() if label == "happy"]
    assert happy.count("happy") >= len(happy) - 1, moods
    correct = sum(label == pred for label, pred in moods.values())
    assert correct >= 0.6 * len(frames), moods


@needs_frames
def test_replayed_happy_photos_end_to_end(tmp_path, mosquitto, daemon_process):
    photos = tmp_path / "happy"
    photos.mkdir()
    for path, label in labelled_frames():
        if label == "happy":
            shutil.copy(path, photos / path.name)
    config = write_config(tmp_path / "config.toml", mosquitto, camera={
        "source": "replay", "path": str(photos), "realtime": False, "image_seconds": 2.0})
    with Subscriber(mosquitto, ["moodcast/testcam/event"]) as sub, daemon_process(config) as daemon:
        assert daemon.wait(120) == 0
        changes = [m.json()["to"] for m in sub.messages.get("moodcast/testcam/event", [])
                   if m.json()["type"] == "mood_changed"]
    assert changes and changes[0] == "happy", changes  # one group photo may read otherwise later
