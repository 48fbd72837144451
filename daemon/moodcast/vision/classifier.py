"""The emotion classifier: a .tflite model plus its JSON card, run with LiteRT.

Nothing about the model is assumed: the label order comes from the card, the input and output
quantization from the interpreter, and the model is validated when it is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from moodcast.config import ConfigError
from moodcast.labels import MOODS
from moodcast.logs import native_stderr_to_log
from moodcast.vision.calibration import calibrated, log_probabilities
from moodcast.vision.preprocess import INPUT_SIZE, prepare_face

# First available wins: LiteRT (maintained), tflite-runtime (last release 2023), full TensorFlow.
INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")


class ModelError(ConfigError):
    """The model or its card is missing or unusable; worded for the user. A ConfigError: restarting
    will not mend a wrong [model] path, so it exits 78 like any configuration problem."""


class ModelOutputError(ModelError):
    """One inference gave numbers that are not probabilities (NaN, inf, outside [0, 1])."""


OUTPUTS = ("probabilities", "logits")  # what the card's "output" may say; logits get a softmax
TOLERANCE = 0.02  # int8 dequantisation lands a little outside [0, 1]
FLOAT_FLOOR = 1e-6  # the smallest probability a float model's log-probabilities read (int8: one step)
REFERENCE_KEY = "neutral_reference"  # the card's resting-face reference (edge_model.calibration)


@dataclass(frozen=True)
class FaceScores:
    """One face through the model: what the mood follows, and what a calibration averages."""

    probs: np.ndarray  # over the labels; calibrated when a household offset is set
    log_probs: np.ndarray  # the model's own log-probabilities (up to a constant), never calibrated


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
        raise ModelError(f"{card_path}: model card missing (it holds the label order; "
                         "keep it beside the .tflite)") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{card_path}: unreadable model card ({str(e)[:200]})") from None
    if not isinstance(card, dict):
        raise ModelError(f"{card_path}: a model card is a JSON object with 'labels', got a {type(card).__name__}")
    labels = card.get("labels")
    if not isinstance(labels, list) or not labels or any(label not in MOODS for label in labels) \
            or len(set(labels)) != len(labels):
        raise ModelError(f"{card_path}: 'labels' must list distinct moods from {', '.join(MOODS)}, "
                         f"got {str(labels)[:200]}")
    if card.get("output", "probabilities") not in OUTPUTS:
        raise ModelError(f"{card_path}: 'output' must be one of {', '.join(OUTPUTS)}, got {str(card['output'])[:80]!r}")
    return card


def interpreter_class() -> type:
    """The TFLite Interpreter class of the first runtime installed (INTERPRETER_MODULES); ModelError if none."""
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
                self.interpreter = interpreter_class()(model_path=str(self.path), num_threads=num_threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.path}: not a valid TFLite model ({str(e).splitlines()[0]})") from None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: {len(inputs)} inputs and {len(outputs)} outputs, expected one of each")
        self.input, self.output = inputs[0], outputs[0]
        self.logits = self.card.get("output") == "logits"
        self._validate()
        self.log_floor = float(self.output["quantization"][0]) or FLOAT_FLOOR
        self.shift: np.ndarray | None = None  # strength x the household's resting offset (set_shift)

    def _validate(self) -> None:
        shape, out_shape = tuple(self.input["shape"].tolist()), tuple(self.output["shape"].tolist())
        if shape != (1, INPUT_SIZE, INPUT_SIZE, 1):
            raise ModelError(f"{self.path}: input shape {shape}, expected (1, {INPUT_SIZE}, {INPUT_SIZE}, 1)")
        if self.input["dtype"] not in (np.int8, np.uint8, np.float32):
            dtype = np.dtype(self.input["dtype"]).name
            raise ModelError(f"{self.path}: input type {dtype} is not int8, uint8 or float32")
        if out_shape != (1, len(self.labels)):
            raise ModelError(f"{self.path}: output shape {out_shape} does not match the card's "
                             f"{len(self.labels)} labels")

    @property
    def quantized(self) -> bool:
        return self.input["dtype"] != np.float32

    @cached_property
    def sha256(self) -> str:
        """Of the model file: a stored calibration belongs to exactly one model."""
        digest = hashlib.sha256()
        with self.path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    @cached_property
    def neutral_reference(self) -> np.ndarray | None:
        """The mean log-probabilities of relaxed (FER+ neutral) faces, from the card; None when the card has
        none, or has one measured on another model file (then a calibration would aim at the wrong place)."""
        ref = self.card.get(REFERENCE_KEY)
        if not isinstance(ref, dict) or ref.get("model_sha256") != self.sha256:
            return None
        values = ref.get("log_probabilities")
        if not isinstance(values, list) or len(values) != len(self.labels) \
                or not all(isinstance(v, (int, float)) for v in values):
            return None
        return np.array(values, np.float32)

    def set_shift(self, shift: np.ndarray | None) -> None:
        """From now on subtract `shift` (strength x the resting offset) from every face's log-probabilities."""
        self.shift = None if shift is None else np.asarray(shift, np.float32)

    def classify(self, gray_face: np.ndarray) -> np.ndarray:
        """A grayscale face crop -> probabilities over `self.labels`."""
        return self.predict(prepare_face(gray_face))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """One prepared input (48, 48, 1) float32 -> probabilities over `self.labels`."""
        return self.scores(x).probs

    def scores(self, x: np.ndarray) -> FaceScores:
        """One prepared input -> its probabilities (calibrated if a shift is set) and raw log-probabilities."""
        y = self._infer(x)
        log_probs = log_probabilities(y, self.log_floor, self.logits)
        # without a calibration the model's own probabilities go out unchanged, to the last bit
        probs = self._probabilities(y) if self.shift is None else calibrated(log_probs, self.shift)
        return FaceScores(probs, log_probs)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """The dequantised output, checked to be finite (and probabilities, unless the card says logits)."""
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
        # checked, so NaN never reaches JSON and a logits model never publishes -5,000,000
        if not np.all(np.isfinite(y)):
            raise ModelOutputError(f"{self.path.name}: the model output is not finite (NaN or inf)")
        if not self.logits and (y.min() < -TOLERANCE or y.max() > 1 + TOLERANCE):
            raise ModelOutputError(f"{self.path.name}: output {y.min():.3g}..{y.max():.3g} is not probabilities "
                                   "(if the model ends without softmax, say \"output\": \"logits\" in its card)")
        return y

    def _probabilities(self, y: np.ndarray) -> np.ndarray:
        if self.logits:
            y = np.exp(y - y.max())
        y = np.clip(y, 0.0, None)
        return y / max(float(y.sum()), 1e-6)
