"""Training-time augmentation in NumPy/OpenCV, so it runs the same under any Keras backend."""

from __future__ import annotations

import cv2
import numpy as np

from moodcast.vision.preprocess import INPUT_SIZE, prepare_batch


def augment_batch(images: np.ndarray, rng: np.random.Generator, max_shift: float = 0.12,
                  max_rotate: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                  erase_p: float = 0.5) -> np.ndarray:
    """(N, 48, 48) uint8 -> augmented model inputs (N, 48, 48, 1) float32.

    Random shift / rotation / zoom stand in for detector boxes that never sit exactly where
    FER2013's did; flips double the faces; random erasing mimics hands, glasses and occlusion.
    """
    n = len(images)
    out = np.empty_like(images)
    centre = (INPUT_SIZE / 2, INPUT_SIZE / 2)
    angles = rng.uniform(-max_rotate, max_rotate, n)
    scales = rng.uniform(*scale, n)
    shifts = rng.uniform(-max_shift, max_shift, (n, 2)) * INPUT_SIZE
    flips = rng.random(n) < 0.5
    for i in range(n):
        m = cv2.getRotationMatrix2D(centre, angles[i], scales[i])
        m[:, 2] += shifts[i]
        img = cv2.warpAffine(images[i], m, (INPUT_SIZE, INPUT_SIZE), borderMode=cv2.BORDER_REFLECT_101)
        out[i] = img[:, ::-1] if flips[i] else img
    x = prepare_batch(out)
    _random_erase(x, rng, erase_p)
    return x


def _random_erase(x: np.ndarray, rng: np.random.Generator, p: float) -> None:
    for i in np.flatnonzero(rng.random(len(x)) < p):
        area = rng.uniform(0.02, 0.2) * INPUT_SIZE * INPUT_SIZE
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
        h = int(min(INPUT_SIZE - 1, round(np.sqrt(area * aspect))))
        w = int(min(INPUT_SIZE - 1, round(np.sqrt(area / aspect))))
        top, left = rng.integers(0, INPUT_SIZE - h), rng.integers(0, INPUT_SIZE - w)
        x[i, top:top + h, left:left + w, 0] = rng.normal(0, 1, (h, w))
