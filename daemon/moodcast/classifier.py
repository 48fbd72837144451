"""The emotion classifier: a .tflite model plus its JSON card, run with LiteRT.

Nothing about the model is assumed: the label order comes from the card, the input and output
quantization from the interpreter, and the model is validated when it is loaded.
"""

from __future__ import annotations

import importlib
import json
from importlib import resources
from pathlib import Path

import numpy as np

from moodcast.config import MOODS
from moodcast.logs import native_stderr_to_log
from moodcast.preprocess import INPUT_SIZE, prepare_face

# First available wins: LiteRT (maintained), tflite-runtime (last release 2023), full TensorFlow.
INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")


class ModelError(Exception):
    """The model or its card is missing or unusable; worded for the user."""


def bundled_model() -> Path:
    models = sorted(Path(str(resources.files("moodcast") / "models")).glob("*int8.tflite"))
    if not models:
        raise ModelError("no bundled model in the moodcast package; set [model] path")
    return models[-1]


def load_card(model_path: Path) -> dict:
    card_path = model_path.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{card_path}: model card missing (it holds the label order; keep it beside the .tflite)") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{card_path}: unreadable model card ({e})") from None
    labels = card.get("labels")
    if not isinstance(labels, list) or not labels or any(label not in MOODS for label in labels):
        raise ModelError(f"{card_path}: 'labels' must list moods from {', '.join(MOODS)}, got {labels!r}")
    return card


def _interpreter_class():
    for name in INTERPRETER_MODULES:
        try:
            return importlib.import_module(name).Interpreter
        except ImportError:
            continue
    raise ModelError("no TFLite interpreter: pip install ai-edge-litert")


class EmotionClassifier:
    def __init__(self, model_path: str | Path | None = None, num_threads: int = 2):
        self.path = Path(model_path) if model_path else bundled_model()
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file does not exist")
        self.card = load_card(self.path)
        self.labels: tuple[str, ...] = tuple(self.card["labels"])
        try:
            with native_stderr_to_log("moodcast.litert"):
                self.interpreter = _interpreter_class()(model_path=str(self.path), num_threads=num_threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.path}: not a valid TFLite model ({str(e).splitlines()[0]})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._validate()

    def _validate(self) -> None:
        shape, out_shape = tuple(self.input["shape"].tolist()), tuple(self.output["shape"].tolist())
        if shape != (1, INPUT_SIZE, INPUT_SIZE, 1):
            raise ModelError(f"{self.path}: input shape {shape}, expected (1, {INPUT_SIZE}, {INPUT_SIZE}, 1)")
        if self.input["dtype"] not in (np.int8, np.uint8, np.float32):
            raise ModelError(f"{self.path}: input type {np.dtype(self.input['dtype']).name} is not int8, uint8 or float32")
        if out_shape != (1, len(self.labels)):
            raise ModelError(f"{self.path}: output shape {out_shape} does not match the card's "
                             f"{len(self.labels)} labels")

    @property
    def quantized(self) -> bool:
        return self.input["dtype"] != np.float32

    def classify(self, gray_face: np.ndarray) -> np.ndarray:
        """A grayscale face crop -> probabilities over `self.labels`."""
        return self.predict(prepare_face(gray_face))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """One prepared input (48, 48, 1) float32 -> probabilities over `self.labels`."""
        x = x[None]
        scale, zero = self.input["quantization"]
        if scale:  # quantized input: the calibration picked these, so read them, never assume
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"]))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0].astype(np.float32)
        scale, zero = self.output["quantization"]
        if scale:
            y = (y - zero) * scale
        return y / max(float(y.sum()), 1e-6)
