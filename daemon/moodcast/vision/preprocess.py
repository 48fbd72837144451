"""Face crop -> model input. Training, quantization and the daemon all call this one function."""

from __future__ import annotations

import cv2
import numpy as np

INPUT_SIZE = 48  # FER2013 faces are 48x48 grayscale


def prepare_face(gray_face: np.ndarray) -> np.ndarray:
    """A grayscale face crop (H, W) uint8 -> (48, 48, 1) float32, zero mean and unit variance.

    Per-image standardisation makes the model indifferent to exposure and contrast, which differ
    far more between a living-room camera and FER2013's web photos than the faces themselves do.
    """
    if gray_face.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale face, got shape {gray_face.shape}")
    if gray_face.shape != (INPUT_SIZE, INPUT_SIZE):
        interp = cv2.INTER_AREA if min(gray_face.shape) > INPUT_SIZE else cv2.INTER_LINEAR
        gray_face = cv2.resize(gray_face, (INPUT_SIZE, INPUT_SIZE), interpolation=interp)
    return _standardise(gray_face[None])[0]


def prepare_batch(gray_faces: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 48, 48, 1) float32, for training and evaluation."""
    return _standardise(gray_faces)


def _standardise(faces: np.ndarray) -> np.ndarray:
    x = faces.astype(np.float32)
    x -= x.mean(axis=(1, 2), keepdims=True)
    x /= np.maximum(x.std(axis=(1, 2), keepdims=True), 1.0)  # a blank crop stays zeros
    return x[..., None]
