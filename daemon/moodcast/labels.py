"""The closed word lists moodcast publishes and accepts, each defined once: the moods, the two states
beyond them, and the recommendation policies. Config, the MQTT contract, the tracker and the
recommender all take them from here.

The moods are FER2013's classes. The model's own label order travels in its card (JSON beside the
.tflite); this module only defines the dataset's convention so that training, evaluation and the
daemon agree on it. The FER+ vote columns, which only the offline tools use, are in edge_model/ferplus.py.
"""

from __future__ import annotations

from moodcast.util import TextEnum

# FER2013's label ids, in order. The shipped model predicts exactly these seven moods.
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
MOODS = FER2013_CLASSES  # the moods moodcast knows and publishes
NO_FACE, UNCERTAIN = "no_face", "uncertain"  # nobody in view; a face, but no mood is sure enough
STATES = MOODS + (NO_FACE, UNCERTAIN)  # what `state.mood` may say


class Policy(TextEnum):
    """The recommendation policies: [recommendations] policy, `set/policy`, `state.policy`."""

    MATCH = "match"
    UPLIFT = "uplift"
    OFF = "off"


POLICIES: tuple[str, ...] = tuple(policy.value for policy in Policy)
