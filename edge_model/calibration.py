"""The neutral reference a resting-face calibration aims at, written into the model's JSON card.

    python -m edge_model.calibration --model daemon/moodcast/models/moodcast-vgg16-w100-int8.tflite \\
        --data ../shared/data/fer2013.npz

The reference is the mean log-probability vector of the PublicTest faces whose FER+ majority is
neutral, run through moodcast.vision.classifier.EmotionClassifier exactly as the daemon runs them
(so the int8 floor of one step is in it too). A household's calibration maps the mean of its own
relaxed faces onto it (moodcast.vision.calibration). It is stored with the model's sha256: the
daemon ignores a reference measured on another model file. edge_model.card calls this too.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from edge_model import dataset
from moodcast.labels import FER2013_CLASSES
from moodcast.vision.classifier import REFERENCE_KEY, EmotionClassifier
from moodcast.vision.preprocess import prepare_batch

SPLIT = "PublicTest"  # validation data: PrivateTest stays for the model's evaluation alone
NEUTRAL = FER2013_CLASSES.index("neutral")


def ferplus_neutral(split: dataset.Split) -> np.ndarray:
    """Indices of the faces whose FER+ majority (the standard protocol) is neutral."""
    keep, fer = dataset.ferplus_eval_rows(split)
    return np.flatnonzero(keep & (fer == NEUTRAL))


def log_probabilities(classifier: EmotionClassifier, images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 faces -> (N, labels) uncalibrated log-probabilities, the daemon's code path."""
    return np.stack([classifier.scores(x).log_probs for x in prepare_batch(images)])


def neutral_reference(model: Path, data: Path) -> dict:
    """The card's `neutral_reference` for `model`, measured on `data` (fer2013.npz)."""
    classifier = EmotionClassifier(model, num_threads=2)
    split = dataset.load(data)[SPLIT]
    rows = ferplus_neutral(split)
    mean = log_probabilities(classifier, split.images[rows]).mean(axis=0)
    return {
        "log_probabilities": [round(float(v), 5) for v in mean],
        "labels": list(classifier.labels),
        "faces": int(len(rows)),
        "data": f"FER2013 {SPLIT}, the faces whose FER+ majority is neutral, through "
                "moodcast.vision.classifier.EmotionClassifier (log-probabilities, a 0 read as one output step)",
        "model_sha256": classifier.sha256,
        "command": shlex.join(["python", "-m", "edge_model.calibration", "--model", str(model), "--data", str(data)]),
    }


def write_reference(model: Path, data: Path) -> dict:
    """Measure the reference and put it into the JSON card beside `model`, keeping everything else."""
    reference = neutral_reference(model, data)
    card_path = model.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card[REFERENCE_KEY] = reference
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return reference


def refresh_reference(model: Path, data: Path) -> None:
    """For edge_model.card: write the reference when the dataset is here, else say which command will."""
    if not data.is_file():
        print(f"{model.with_suffix('.json')}: {REFERENCE_KEY} not refreshed ({data} is absent): run "
              f"python -m edge_model.calibration --model {model} --data path/to/fer2013.npz", file=sys.stderr)
        return
    reference = write_reference(model, data)
    print(f"{model.with_suffix('.json')}: {REFERENCE_KEY} from {reference['faces']} neutral {SPLIT} faces")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path, help="the int8 .tflite; its .json card is updated")
    p.add_argument("--data", required=True, type=Path, help="fer2013.npz")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    reference = write_reference(args.model, args.data)
    values = ", ".join(f"{label} {v:.2f}" for label, v in zip(reference["labels"], reference["log_probabilities"],
                                                               strict=True))
    print(f"{args.model.with_suffix('.json')}: {REFERENCE_KEY} from {reference['faces']} faces: {values}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
