"""Resting-face calibration on real faces through the shipped model: a synthetic resting bias is removed,
the session refuses what it must, and the stored offset is atomic, private and bound to its model."""

from __future__ import annotations

import json
import logging
import shutil

import cv2
import numpy as np
import pytest

from moodcast.config import ModelConfig
from moodcast.labels import MOODS
from moodcast.service.calibration import FILE_NAME, CalibrationFile, CalibrationRefused, Calibrator, Stored
from moodcast.vision.calibration import (
    MIN_FACES,
    CalibrationFailed,
    CalibrationSession,
    Failure,
    calibrated,
    log_probabilities,
    softmax,
)
from moodcast.vision.classifier import EmotionClassifier, bundled_model
from moodcast.vision.preprocess import prepare_face
from tests.media import FER2013_NPZ, fer_fixtures, needs_fer2013

SAD_RESTING_FACE = np.array([0.4, 0.0, 0.3, -1.2, 2.2, -0.6, -1.1], np.float32)  # reads sad (and a bit angry)


@pytest.fixture(scope="module")
def classifier():
    return EmotionClassifier()


@pytest.fixture(scope="module")
def fixture_faces(classifier):
    """{label: log-probabilities} of the committed FER2013 faces, through the shipped model."""
    return {label: classifier.scores(prepare_face(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))).log_probs
            for path, label in fer_fixtures()}


def session_on(classifier, rows, duration=None) -> CalibrationSession:
    session = CalibrationSession(classifier.labels, classifier.neutral_reference, duration or float(len(rows)))
    for t, row in enumerate(rows):
        session.add(1, row, float(t))
    return session


def top(classifier, probs) -> str:
    return classifier.labels[int(np.argmax(probs))]


# -- the arithmetic ---------------------------------------------------------------------------------

def test_the_shipped_card_has_a_reference_for_the_shipped_model(classifier):
    ref = classifier.neutral_reference
    assert ref is not None and ref.shape == (len(classifier.labels),)
    assert top(classifier, ref) == "neutral"  # relaxed faces read neutral on average
    card = json.loads(bundled_model().with_suffix(".json").read_text())
    assert card["neutral_reference"]["faces"] > 1000 and card["neutral_reference"]["command"].startswith(
        "python -m edge_model.calibration")


def test_without_a_calibration_the_probabilities_are_the_models_own(classifier, fixture_faces):
    x = prepare_face(cv2.imread(str(fer_fixtures()[0][0]), cv2.IMREAD_GRAYSCALE))
    y = classifier._infer(x)
    assert np.array_equal(classifier.scores(x).probs, y / y.sum())
    lp = classifier.scores(x).log_probs
    assert np.isfinite(lp).all() and lp.min() >= np.log(classifier.log_floor) - 1e-6  # a 0 is one step, not -inf
    assert np.allclose(softmax(lp), np.maximum(y, classifier.log_floor) / np.maximum(y, classifier.log_floor).sum())


def test_log_probabilities_of_a_logits_model_are_shifted_logits():
    z = np.array([2.0, -1.0, 0.5], np.float32)
    assert np.allclose(softmax(log_probabilities(z, 1 / 256, logits=True)), softmax(z))
    assert log_probabilities(np.array([0.0, 1.0]), 1 / 256, logits=False)[0] == pytest.approx(np.log(1 / 256))


def test_a_synthetic_resting_bias_is_removed_on_real_faces(classifier, fixture_faces):
    """The person's resting face is the neutral fixture plus a bias that makes it read sad; the camera
    sees that same face for every frame of the calibration. Afterwards their faces read as without it."""
    bias = SAD_RESTING_FACE - SAD_RESTING_FACE.mean()
    resting = fixture_faces["neutral"] + bias
    assert top(classifier, softmax(resting)) == "sad"
    offset = session_on(classifier, [resting] * MIN_FACES).finish()
    unbiased = session_on(classifier, [fixture_faces["neutral"]] * MIN_FACES).finish()
    assert offset.faces == MIN_FACES and np.allclose(offset.values - unbiased.values, bias, atol=1e-5)
    for lp in fixture_faces.values():  # the biased person, calibrated, reads as the unbiased one, calibrated
        assert np.allclose(calibrated(lp + bias, offset.values), calibrated(lp, unbiased.values), atol=1e-5)
    assert top(classifier, calibrated(resting, offset.values)) == "neutral"
    for label in ("happy", "surprise", "neutral"):  # the clear expressions are what they were
        assert top(classifier, calibrated(fixture_faces[label] + bias, offset.values)) == label


@needs_fer2013
def test_a_resting_bias_costs_accuracy_and_calibration_wins_it_back():
    from edge_model import dataset
    from edge_model.calibration import ferplus_neutral
    from edge_model.calibration import log_probabilities as faces_log_probs

    clf = EmotionClassifier()
    split = dataset.load(FER2013_NPZ)["PublicTest"]
    keep, fer = dataset.ferplus_eval_rows(split)
    rng = np.random.default_rng(3)
    calib = rng.choice(ferplus_neutral(split), MIN_FACES, replace=False)
    scored = rng.choice(np.setdiff1d(np.flatnonzero(keep), calib), 400, replace=False)
    lp = faces_log_probs(clf, split.images[np.concatenate([calib, scored])])
    bias = SAD_RESTING_FACE - SAD_RESTING_FACE.mean()
    truth = fer[scored]

    def accuracy(z):
        return float(np.mean(z.argmax(axis=1) == truth))

    plain, biased = accuracy(lp[MIN_FACES:]), accuracy(lp[MIN_FACES:] + bias)
    offset = session_on(clf, lp[:MIN_FACES] + bias).finish()
    fixed = accuracy(lp[MIN_FACES:] + bias - offset.values)
    assert biased < plain - 0.10, (plain, biased)
    assert fixed > plain - 0.03, (plain, biased, fixed)


# -- the session's refusals -------------------------------------------------------------------------

def test_refusals(classifier, fixture_faces):
    ref = classifier.neutral_reference

    def fails(feed) -> CalibrationFailed:
        session = CalibrationSession(classifier.labels, ref, 10.0)
        for t, (faces, lp) in enumerate(feed):
            session.add(faces, lp, float(t))
        with pytest.raises(CalibrationFailed) as info:
            session.finish()
        return info.value

    neutral, happy = fixture_faces["neutral"], fixture_faces["happy"]
    assert fails([(0, None)] * 50).reason is Failure.NO_FACE
    short = fails([(1, neutral)] * (MIN_FACES - 1) + [(0, None)] * 30)
    assert (short.reason, short.faces) == (Failure.TOO_FEW_FACES, MIN_FACES - 1)
    assert fails([(2, neutral)] * 30 + [(1, neutral)] * 25).reason is Failure.SEVERAL_FACES
    smiling = fails([(1, happy)] * 40 + [(1, neutral)] * 5)
    assert smiling.reason is Failure.NOT_RELAXED and "happy in 89%" in smiling.message
    assert session_on(classifier, [happy] * 7 + [neutral] * 33).finish().faces == 40  # a smile now and then is fine


def test_a_session_lasts_its_duration_from_its_first_frame(classifier, fixture_faces):
    session = CalibrationSession(classifier.labels, classifier.neutral_reference, 20.0)
    assert session.remaining_s() == 20.0 and not session.due()
    session.add(1, fixture_faces["neutral"], 1000.0)  # a live camera's monotonic clock
    session.add(1, fixture_faces["neutral"], 1012.0)
    assert session.remaining_s() == 8.0 and not session.due()
    session.add(1, fixture_faces["neutral"], 1020.0)
    assert session.due()


# -- stored with its model ----------------------------------------------------------------------------

def a_calibrator(classifier, tmp_path, strength=1.0) -> Calibrator:
    return Calibrator(classifier, tmp_path / "state", ModelConfig(calibration_strength=strength, calibration_s=5.0))


def feed(calibrator, lp, frames=30, faces=1):
    events = []
    for t in range(frames):
        events += calibrator.frame(faces, lp, t * 0.2)
    return events


def test_a_calibration_is_stored_privately_and_applied_and_survives_a_restart(classifier, fixture_faces, tmp_path):
    bias = SAD_RESTING_FACE - SAD_RESTING_FACE.mean()
    first = a_calibrator(classifier, tmp_path)
    started = first.start()
    assert started.type == "calibration_started" and started.body()["duration_s"] == 5.0
    with pytest.raises(CalibrationRefused, match="already calibrating"):
        first.start()
    events = feed(first, fixture_faces["neutral"] + bias)
    assert [e.type for e in events] == ["calibration_done"]
    done = events[0].body()
    assert done["faces"] == 26 and done["offset"]["sad"] > 1.0 and done["strength"] == 1.0
    path = tmp_path / "state" / FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    stored = json.loads(path.read_text())
    assert set(stored) == {"model_sha256", "labels", "offset", "faces", "created"}  # numbers only, no face
    assert stored["model_sha256"] == classifier.sha256
    x = prepare_face(cv2.imread(str(dict((lbl, p) for p, lbl in fer_fixtures())["neutral"]), cv2.IMREAD_GRAYSCALE))
    assert classifier.shift is not None
    shifted = classifier.scores(x).probs
    try:
        again = a_calibrator(classifier, tmp_path, strength=0.5)  # a restart, with another strength
        again.restore()
        assert np.allclose(classifier.shift, 0.5 * np.array(stored["offset"]), atol=1e-6)
        assert again.stats() == {"stored": True, "strength": 0.5, "running": False, "faces": 26,
                                 "offset_size": round(float(np.linalg.norm(stored["offset"])), 3),
                                 "since": stored["created"]}
        off = a_calibrator(classifier, tmp_path, strength=0.0)
        off.restore()
        assert classifier.shift is None and off.stats()["stored"]
        a_calibrator(classifier, tmp_path).restore()
        assert np.allclose(classifier.scores(x).probs, shifted)
        assert [e.type for e in again.reset()] == [] and not path.exists() and classifier.shift is None
    finally:
        classifier.set_shift(None)


def test_a_failed_calibration_stores_nothing_and_keeps_the_one_before(classifier, fixture_faces, tmp_path):
    calibrator = a_calibrator(classifier, tmp_path)
    try:
        calibrator.start()
        feed(calibrator, fixture_faces["neutral"])
        before = (tmp_path / "state" / FILE_NAME).read_bytes()
        calibrator.start()
        events = feed(calibrator, fixture_faces["happy"])
        assert [e.body()["reason"] for e in events] == ["not_relaxed"]
        assert (tmp_path / "state" / FILE_NAME).read_bytes() == before and calibrator.stored is not None
        calibrator.start()
        assert [e.body()["reason"] for e in calibrator.abort(Failure.PAUSED, "paused")] == ["paused"]
        assert calibrator.frame(1, fixture_faces["neutral"], 99.0) == []  # nothing running any more
        calibrator.start()
        assert [e.body()["reason"] for e in calibrator.reset()] == ["cancelled"]
    finally:
        classifier.set_shift(None)
    fresh = a_calibrator(classifier, tmp_path / "other")
    fresh.start()
    assert [e.body()["reason"] for e in feed(fresh, None, faces=0)] == ["no_face"]
    assert not (tmp_path / "other" / "state").exists()


def test_a_calibration_of_another_model_is_discarded_with_a_warning(classifier, tmp_path, caplog):
    path = tmp_path / "state" / FILE_NAME
    CalibrationFile(tmp_path / "state").save(Stored("0" * 64, classifier.labels, (0.1,) * 7, 30, 1e9))
    with caplog.at_level(logging.WARNING):
        a_calibrator(classifier, tmp_path).restore()
    assert "made with another model" in caplog.text and not path.exists() and classifier.shift is None


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"model_sha256": "x"}', b"\xff", b" " * 5000,
                                     b'{"model_sha256": "x", "labels": ["a"], "offset": [NaN], "faces": 3, '
                                     b'"created": "2026-01-01T00:00:00Z"}'])
def test_an_unreadable_calibration_is_discarded(classifier, tmp_path, caplog, content):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / FILE_NAME).write_bytes(content)
    with caplog.at_level(logging.WARNING):
        a_calibrator(classifier, tmp_path).restore()
    assert "unreadable calibration" in caplog.text and classifier.shift is None


def test_a_model_without_a_reference_refuses_to_calibrate(tmp_path):
    model = tmp_path / "m-int8.tflite"
    shutil.copy(bundled_model(), model)
    card = json.loads(bundled_model().with_suffix(".json").read_text())
    card["neutral_reference"]["model_sha256"] = "f" * 64  # measured on another file
    model.with_suffix(".json").write_text(json.dumps(card))
    clf = EmotionClassifier(model)
    assert clf.neutral_reference is None
    with pytest.raises(CalibrationRefused, match="no neutral reference for this model file"):
        a_calibrator(clf, tmp_path).start()
    assert tuple(card["labels"]) == MOODS
