"""What a resting-face calibration is worth, and its default strength: python -m bench.calibration --data fer2013.npz

A person is simulated as a resting bias: one vector added to the log-probabilities of every face
of theirs (a face that reads sadder, or angrier, than it is). Each simulated person calibrates on
MIN_FACES FER+-neutral PublicTest faces shifted by their bias, through the daemon's own
CalibrationSession (so its refusals apply), and is then scored on 100 other PublicTest faces shifted
by the same bias, uncalibrated and calibrated at each strength. The reference the calibration aims
at comes from the other half of PublicTest (two folds, swapped), never from the faces scored.

Biases: none (what calibrating costs a household that needs none); isotropic Gaussian ones of
growing size (nats per class); and "real neutral faces": the bias is how far one real neutral
PublicTest face reads from the reference, the spread of resting faces as the model sees them.
Scores: FER+ majority top-1 (the standard protocol; contempt counts as a miss) and top-1 on the
original FER2013 labels. PrivateTest is not touched: it stays the model's held-out test.
The default strength is chosen by a rule fixed before the run: the highest FER+ top-1 averaged over
all bias scenarios (none included), the smaller strength on a tie.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_model import dataset
from edge_model.calibration import SPLIT, ferplus_neutral, log_probabilities
from moodcast.labels import FER2013_CLASSES
from moodcast.vision.calibration import MIN_FACES, CalibrationFailed, CalibrationSession
from moodcast.vision.classifier import EmotionClassifier

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
GAUSSIAN = (0.5, 1.0, 1.5, 2.0)  # standard deviation of the bias per class, nats
SCORED = 100  # faces scored per person


@dataclass
class Faces:
    log_probs: np.ndarray  # (N, 7) uncalibrated, through EmotionClassifier
    ferplus: np.ndarray  # FER+ majority class, -1 for contempt, -2 where the protocol drops the face
    fer2013: np.ndarray
    neutral: np.ndarray  # indices of the FER+ neutral faces
    labels: tuple[str, ...]


def load(data: Path, model: Path | None) -> Faces:
    classifier = EmotionClassifier(model, num_threads=2)
    if tuple(classifier.labels) != tuple(FER2013_CLASSES):  # outputs are compared with FER2013 class ids below
        raise SystemExit(f"bench.calibration: the model's labels {list(classifier.labels)} are not in FER2013's "
                         f"order {list(FER2013_CLASSES)}")
    split = dataset.load(data)[SPLIT]
    keep, fer = dataset.ferplus_eval_rows(split)
    return Faces(log_probabilities(classifier, split.images), np.where(keep, fer, -2), split.labels,
                 ferplus_neutral(split), classifier.labels)


def calibrate(faces: Faces, rows: np.ndarray, bias: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """The daemon's CalibrationSession on these faces with `bias`: the offset, or None when it refuses."""
    session = CalibrationSession(faces.labels, reference, duration_s=float(len(rows)))
    for t, row in enumerate(rows):
        session.add(1, faces.log_probs[row] + bias, float(t))
    try:
        return session.finish().values
    except CalibrationFailed:
        return None


def simulate(faces: Faces, biases: np.ndarray, rng: np.random.Generator) -> dict:
    """FER+ and FER2013 top-1 at each strength (0 = uncalibrated) and the refusal rate, for these people."""
    folds = np.array_split(rng.permutation(len(faces.log_probs)), 2)
    hits = {s: {"ferplus": [0, 0], "fer2013": [0, 0]} for s in STRENGTHS}
    refused = 0
    for (own, other), fold_biases in zip(((folds[0], folds[1]), (folds[1], folds[0])), np.array_split(biases, 2),
                                         strict=True):
        reference = faces.log_probs[np.intersect1d(other, faces.neutral)].mean(axis=0)
        neutral_own = np.intersect1d(own, faces.neutral)
        for bias in fold_biases:
            calib = rng.choice(neutral_own, MIN_FACES, replace=False)
            scored = rng.choice(np.setdiff1d(own, calib), SCORED, replace=False)
            offset = calibrate(faces, calib, bias, reference)
            refused += offset is None
            z = faces.log_probs[scored] + bias
            for s in STRENGTHS:
                pred = (z - s * offset if offset is not None else z).argmax(axis=1)
                _count(hits[s]["ferplus"], pred, faces.ferplus[scored])
                _count(hits[s]["fer2013"], pred, faces.fer2013[scored])
    people = len(biases)
    return {"people": people, "refused": refused,
            "accuracy": {s: {k: h[0] / h[1] for k, h in v.items()} for s, v in hits.items()}}


def _count(tally: list[int], pred: np.ndarray, truth: np.ndarray) -> None:
    scored = truth != -2  # faces the FER+ protocol drops are not scored on it
    tally[0] += int((pred[scored] == truth[scored]).sum())
    tally[1] += int(scored.sum())


def scenarios(faces: Faces, people: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bias vectors (people, 7) per scenario; each is centred, as only differences between classes matter."""
    k = len(faces.labels)
    reference = faces.log_probs[faces.neutral].mean(axis=0)
    real = faces.log_probs[rng.choice(faces.neutral, people)] - reference
    out = {"no bias": np.zeros((people, k))}
    out.update({f"Gaussian, sd {sd:g}": rng.normal(0, sd, (people, k)) for sd in GAUSSIAN})
    out["real neutral faces"] = real
    return {name: b - b.mean(axis=1, keepdims=True) for name, b in out.items()}


def not_relaxed_check(faces: Faces, people: int, rng: np.random.Generator) -> dict:
    """How often the session refuses calibration faces that are happy (it should) or neutral (it should not)."""
    happy = np.flatnonzero(faces.ferplus == faces.labels.index("happy"))
    reference = faces.log_probs[faces.neutral].mean(axis=0)
    rates = {}
    for name, pool in (("happy faces refused", happy), ("neutral faces refused", faces.neutral)):
        refusals = sum(calibrate(faces, rng.choice(pool, MIN_FACES, replace=False), np.zeros(len(faces.labels)),
                                 reference) is None for _ in range(people))
        rates[name] = refusals / people
    return rates


def choose(results: dict[str, dict]) -> float:
    """The rule fixed before the run: highest FER+ top-1 averaged over every scenario; the smaller on a tie."""
    mean = {s: np.mean([r["accuracy"][s]["ferplus"] for r in results.values()]) for s in STRENGTHS}
    best = max(mean.values())
    return min(s for s in STRENGTHS if mean[s] >= best - 1e-12)


def table(results: dict[str, dict]) -> str:
    head = "| bias | " + " | ".join(f"strength {s:g}" for s in STRENGTHS) + " |"
    rows = [head, "|---" * (len(STRENGTHS) + 1) + "|"]
    for name, r in results.items():
        cells = [f"{100 * r['accuracy'][s]['ferplus']:.1f} / {100 * r['accuracy'][s]['fer2013']:.1f}"
                 for s in STRENGTHS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.calibration", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="fer2013.npz")
    p.add_argument("--model", type=Path, help="the .tflite (default: the bundled model)")
    p.add_argument("--people", type=int, default=1000, help="simulated people per scenario")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    rng = np.random.default_rng(args.seed)
    faces = load(args.data, args.model)
    results = {name: simulate(faces, biases, rng) for name, biases in scenarios(faces, args.people, rng).items()}
    checks = not_relaxed_check(faces, args.people, rng)
    strength = choose(results)
    print(f"PublicTest, {args.people} simulated people per scenario, {MIN_FACES} calibration faces and {SCORED} "
          f"scored faces each; cells: FER+ majority top-1 / FER2013 top-1, %\n")
    print(table(results))
    print("\ncalibration refused: " + ", ".join(f"{name} {r['refused'] / r['people']:.1%}"
                                              for name, r in results.items()))
    print("not-relaxed rule, unshifted faces: " + ", ".join(f"{k} {v:.1%}" for k, v in checks.items()))
    print(f"\ndefault strength by the rule (highest mean FER+ top-1 over the scenarios): {strength:g}")
    if args.out:
        args.out.write_text(json.dumps({"results": results, "not_relaxed": checks, "strength": strength,
                                        "command": "python -m bench.calibration " + " ".join(
                                            sys.argv[1:] if argv is None else argv)}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
