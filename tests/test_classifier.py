"""The emotion classifier: model validation, label/quantization reading, preprocessing parity, real faces."""

import shutil

import cv2
import numpy as np
import pytest

from moodcast.labels import FER2013_CLASSES
from moodcast.vision.classifier import EmotionClassifier, ModelError, bundled_model
from moodcast.vision.preprocess import prepare_batch, prepare_face
from tests.media import fer_fixtures


def test_bundled_model_loads_with_labels_from_its_card():
    clf = EmotionClassifier()
    assert clf.labels == FER2013_CLASSES
    assert clf.quantized
    scale, _ = clf.input["quantization"]
    assert scale > 0  # read from the model, not assumed


def test_probabilities_are_a_distribution():
    clf = EmotionClassifier()
    face = cv2.imread(str(fer_fixtures()[0][0]), cv2.IMREAD_GRAYSCALE)
    p = clf.classify(face)
    assert p.shape == (7,) and np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-5)


def test_preprocessing_is_one_function_for_training_and_device():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    batch = prepare_batch(faces)
    for face, row in zip(faces, batch, strict=False):
        np.testing.assert_allclose(prepare_face(face), row, atol=1e-6)
    # a detector crop of another size is resized to the same input
    big = cv2.resize(faces[0], (96, 96), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_allclose(prepare_face(big), batch[0], atol=1e-4)


def test_training_tools_import_the_runtime_preprocessing():
    pytest.importorskip("keras")
    import edge_model.augment
    import edge_model.train
    import moodcast.vision.preprocess

    assert edge_model.train.prepare_batch is moodcast.vision.preprocess.prepare_batch
    assert edge_model.augment.prepare_batch is moodcast.vision.preprocess.prepare_batch


def test_blank_face_does_not_explode():
    x = prepare_face(np.full((48, 48), 128, np.uint8))
    assert np.all(x == 0)


def test_corrupt_model_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 100)
    shutil.copy(bundled_model().with_suffix(".json"), bad.with_suffix(".json"))
    with pytest.raises(ModelError, match="not a valid TFLite model"):
        EmotionClassifier(bad)


def test_missing_card_is_one_clear_error(tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(bundled_model(), model)
    with pytest.raises(ModelError, match="model card missing"):
        EmotionClassifier(model)


def test_card_with_unknown_labels_is_refused(tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(bundled_model(), model)
    model.with_suffix(".json").write_text('{"labels": ["joy", "gloom"]}')
    with pytest.raises(ModelError, match="'labels' must list distinct moods"):
        EmotionClassifier(model)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        EmotionClassifier(tmp_path / "nope.tflite")
