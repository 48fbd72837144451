"""Models that break the contract, as real .tflite files (tests/fixtures/models, made by make.py):
refused at load with exit 78, or their output refused per frame, never published as scores."""

import json
import shutil
import signal

import numpy as np
import pytest

from bench.mosquitto import Subscriber
from moodcast.labels import MOODS
from moodcast.vision.classifier import EmotionClassifier, ModelError, ModelOutputError
from tests.daemon_process import STARTUP, STOP, run_cli, write_config
from tests.media import ROOT, SAMPLES

FIXTURES = ROOT / "tests" / "fixtures" / "models"
FACE = np.zeros((48, 48, 1), np.float32)


def model(tmp_path, name: str, card) -> str:
    path = tmp_path / f"{name}.tflite"
    shutil.copy(FIXTURES / f"{name}.tflite", path)
    path.with_suffix(".json").write_text(json.dumps(card))
    return str(path)


def test_logits_are_refused_unless_the_card_says_logits(tmp_path):
    raw = EmotionClassifier(model(tmp_path, "logits", {"labels": list(MOODS)}))
    with pytest.raises(ModelOutputError, match="is not probabilities"):
        raw.predict(FACE)
    (tmp_path / "declared").mkdir()
    declared = EmotionClassifier(model(tmp_path / "declared", "logits", {"labels": list(MOODS), "output": "logits"}))
    probs = declared.predict(FACE)
    assert np.all((probs >= 0) & (probs <= 1)) and abs(probs.sum() - 1) < 1e-5
    assert declared.labels[int(probs.argmax())] == "happy"


def test_nan_output_is_refused(tmp_path):
    with pytest.raises(ModelOutputError, match="not finite"):
        EmotionClassifier(model(tmp_path, "nan", {"labels": list(MOODS)})).predict(FACE)


@pytest.mark.parametrize("name, card, message", [
    ("two_inputs", {"labels": list(MOODS)}, "2 inputs and 1 outputs, expected one of each"),
    ("logits", ["happy"] * 7, "a model card is a JSON object"),
    ("logits", {"labels": ["happy"] * 7}, "'labels' must list distinct moods"),
    ("logits", {"labels": list(MOODS), "output": "scores"}, "'output' must be one of probabilities, logits"),
])
def test_broken_models_and_cards_exit_78(tmp_path, name, card, message):
    path = model(tmp_path, name, card)
    with pytest.raises(ModelError, match=message):
        EmotionClassifier(path)
    config = write_config(tmp_path / "config.toml", None, model={"path": path})
    result = run_cli("check-config", "-c", str(config), timeout=600)
    assert result.returncode == 78 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_the_daemon_skips_frames_of_a_nan_model_and_says_so_once(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto,
                          model={"path": model(tmp_path, "nan", {"labels": list(MOODS)})},
                          camera={"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True,
                                  "loop": True})
    with Subscriber(mosquitto, ["moodcast/testcam/#"]) as sub, daemon_process(config) as daemon:
        error = sub.wait_for("moodcast/testcam/event", lambda m: m.json().get("component") == "model", timeout=STARTUP)
        assert "not finite" in error.json()["message"]
        for state in sub.messages.get("moodcast/testcam/state", []):
            assert state.json()["mood"] == "no_face"  # valid JSON (json() parses), and no NaN mood
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
        out = daemon.output()
    assert out.count("the model output is not finite") == 1
