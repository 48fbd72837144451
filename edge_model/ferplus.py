"""FER+ votes (Barsoum et al. 2016, 10 annotators per face) in FER2013's label space, for training and evaluation.

Only the offline tools use the votes; the daemon's labels are in moodcast.labels.
"""

from __future__ import annotations

import numpy as np

from moodcast.labels import FER2013_CLASSES

# Columns of the FER+ vote matrix (fer2013new.csv order).
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
# FER+ column -> FER2013 class id; contempt, unknown and NF have no FER2013 class.
FERPLUS_TO_FER = {"neutral": 6, "happiness": 3, "surprise": 5, "sadness": 4, "anger": 0, "disgust": 1, "fear": 2}
CONTEMPT, UNKNOWN, NOT_A_FACE = 7, 8, 9


def votes_to_fer_distribution(votes: np.ndarray, drop_single_votes: bool = True) -> np.ndarray:
    """FER+ votes (N, 10) -> probability targets over the 7 FER2013 classes, (N, 7) float32.

    Votes for contempt/unknown/not-a-face are dropped. Like Microsoft's FER+ reader, a single
    vote is treated as annotator noise. Rows with no emotion votes left become all-zero.
    """
    v = votes.astype(np.float32).copy()
    if drop_single_votes:
        v[v <= 1] = 0
    out = np.zeros((len(v), len(FER2013_CLASSES)), np.float32)
    for col, fer_id in FERPLUS_TO_FER.items():
        out[:, fer_id] = v[:, FERPLUS_COLUMNS.index(col)]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """FER+ majority-vote label per row as a FER+ column index, or -1 when there is no majority.

    The FER+ protocol: single votes are discarded, the top label needs more than half of the
    remaining votes. Callers exclude rows whose majority is unknown or not-a-face.
    """
    v = votes.astype(np.float32).copy()
    v[v <= 1] = 0
    top = v.argmax(axis=1)
    has_majority = v.max(axis=1) > 0.5 * v.sum(axis=1)
    return np.where(has_majority, top, -1)


def ferplus_column_to_fer(column: np.ndarray) -> np.ndarray:
    """FER+ column index -> FER2013 class id, -1 for contempt/unknown/NF/no majority."""
    lut = np.full(len(FERPLUS_COLUMNS) + 1, -1, np.int64)  # last slot serves index -1
    for col, fer_id in FERPLUS_TO_FER.items():
        lut[FERPLUS_COLUMNS.index(col)] = fer_id
    return lut[column]
