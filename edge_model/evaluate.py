"""Evaluation of a .tflite model on PrivateTest under both protocols (filled in below)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moodcast.classifier import EmotionClassifier


def predict_tflite(path: Path, x: np.ndarray, num_threads: int = 2) -> np.ndarray:
    """Probabilities for prepared inputs (N, 48, 48, 1), through the daemon's own classifier."""
    clf = EmotionClassifier(path, num_threads=num_threads)
    return np.stack([clf.predict(xi) for xi in x])
