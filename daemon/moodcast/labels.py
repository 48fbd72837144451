"""Emotion classes: FER2013's, which the daemon publishes as moods.

The model's own label order travels in its card (JSON beside the .tflite); this module only
defines the dataset's convention so that training, evaluation and the daemon agree on it.
The FER+ vote columns, which only the offline tools use, are in edge_model/ferplus.py.
"""

from __future__ import annotations

# FER2013's label ids, in order. The shipped model predicts exactly these seven moods.
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
