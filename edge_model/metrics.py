"""Classification metrics in pure NumPy (no sklearn in the runtime or train extras): the one
definition evaluate (the model card's tables) and select (the checkpoint rule) both score with."""

from __future__ import annotations

import numpy as np

from moodcast.labels import FER2013_CLASSES


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n) counts, rows = true class, columns = predicted; rows with y_true < 0 are left out."""
    inside = y_true >= 0
    flat = y_true[inside] * n_classes + y_pred[inside]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes=FER2013_CLASSES) -> dict:
    """Top-1 accuracy, per-class P/R/F1, macro-F1 and confusion matrix.

    y_true may hold -1 for a true class the model cannot output (FER+ contempt): such a row is a
    miss, and a false positive for whatever the model predicted.
    """
    n = len(classes)
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    per_class = {}
    for c, name in enumerate(classes):
        tp = int(np.sum((y_true == c) & (y_pred == c)))
        predicted, support = int(np.sum(y_pred == c)), int(np.sum(y_true == c))
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class[name] = {"precision": p, "recall": r, "f1": f1, "support": support}
    outside = y_true < 0
    recalls = [m["recall"] for m in per_class.values() if m["support"]]  # a class absent from the test scores no recall
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(np.mean([m["f1"] for m in per_class.values()])),
        "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0,
        "min_recall": float(min(recalls)) if recalls else 0.0,
        "per_class": per_class,
        "confusion": confusion_matrix(y_true, y_pred, n).tolist(),
        "outside_classes": {"n": int(outside.sum()),
                            "predicted_as": np.bincount(y_pred[outside], minlength=n).tolist()},
    }
