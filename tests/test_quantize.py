"""Quantizing a tiny model end to end, and the daemon reading what the quantizer wrote."""

import json

import cv2
import numpy as np
import pytest

from moodcast.labels import FER2013_CLASSES
from moodcast.vision.classifier import EmotionClassifier, ModelError
from moodcast.vision.preprocess import prepare_batch
from tests.media import fer_fixtures

keras = pytest.importorskip("keras", reason="needs the train extra (keras + tensorflow-cpu)")
pytest.importorskip("tensorflow", reason="needs the train extra (tensorflow-cpu)")

from edge_model.model import build_vgg16, count_macs  # noqa: E402
from quantize.convert import to_tflite  # noqa: E402


def faces():
    return prepare_batch(np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_fixtures()]))


def write(tmp_path, name, model_bytes, labels=FER2013_CLASSES):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model_bytes)
    path.with_suffix(".json").write_text(json.dumps({"labels": list(labels)}))
    return path


def test_vgg16_topology():
    model = build_vgg16(7, width=1.0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 13 and convs[-1].filters == 512
    assert model.count_params() == pytest.approx(15.3e6, rel=0.02)  # the published VGG16-at-48x48 size
    assert count_macs(model) == pytest.approx(0.70e9, rel=0.03)


def test_int8_end_to_end_with_quantization_read_from_the_model(tmp_path):
    model = build_vgg16(7, width=0.125)
    x = faces()
    int8 = write(tmp_path, "tiny-int8", to_tflite(model, calibration=np.repeat(x, 4, axis=0)))
    flt = write(tmp_path, "tiny-float32", to_tflite(model, calibration=None))
    q, f = EmotionClassifier(int8), EmotionClassifier(flt)
    assert q.quantized and q.input["dtype"] == np.int8 and q.output["dtype"] == np.int8
    assert not f.quantized
    scale, zero = q.input["quantization"]
    assert 0 < scale < 1  # calibrated on standardised faces, whose range is a few units
    keras_p = model.predict(x, verbose=0)
    for xi, kp in zip(x, keras_p, strict=False):
        np.testing.assert_allclose(f.predict(xi), kp, atol=1e-4)
        np.testing.assert_allclose(q.predict(xi), kp, atol=0.05)


def test_wrong_input_shape_is_refused(tmp_path):
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs))
    path = write(tmp_path, "wrong", to_tflite(keras.Model(inputs, outputs), None))
    with pytest.raises(ModelError, match=r"input shape \(1, 32, 32, 1\), expected \(1, 48, 48, 1\)"):
        EmotionClassifier(path)


def test_label_count_must_match_the_output(tmp_path):
    path = write(tmp_path, "five", to_tflite(build_vgg16(7, width=0.125), None), labels=FER2013_CLASSES[:5])
    with pytest.raises(ModelError, match="output shape"):
        EmotionClassifier(path)
