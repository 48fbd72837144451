"""FER2013 / FER+ loading from the project's npz or the public CSV files, with the official split."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_model.ferplus import (
    FERPLUS_COLUMNS,
    NOT_A_FACE,
    UNKNOWN,
    ferplus_column_to_fer,
    ferplus_majority,
    votes_to_fer_distribution,
)

SPLITS = ("Training", "PublicTest", "PrivateTest")
LABEL_MODES = ("fer2013", "ferplus-majority", "ferplus-votes")


@dataclass
class Split:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) original FER2013 label
    votes: np.ndarray | None  # (N, 10) FER+ votes, None when only fer2013.csv was given

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, keep: np.ndarray) -> Split:
        return Split(self.images[keep], self.labels[keep], None if self.votes is None else self.votes[keep])


def load(path: str | Path, ferplus_csv: str | Path | None = None) -> dict[str, Split]:
    """Load the dataset as {split name: Split}. `path` is fer2013.npz or fer2013.csv."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset file (give fer2013.npz or fer2013.csv)")
    if path.suffix == ".npz":
        d = np.load(path)
        images, labels, usage, votes = d["images"], d["labels"].astype(np.int64), d["usage"], d["ferplus_votes"]
    else:
        images, labels, usage = _read_fer2013_csv(path)
        votes = _read_ferplus_csv(Path(ferplus_csv), len(images)) if ferplus_csv else None
    return {
        name: Split(images[usage == name], labels[usage == name], None if votes is None else votes[usage == name])
        for name in SPLITS
    }


def targets(split: Split, mode: str) -> tuple[Split, np.ndarray]:
    """Rows usable under a label mode and their targets: class ids, or (N, 7) vote distributions."""
    if mode == "fer2013":
        return split, split.labels
    if split.votes is None:
        raise ValueError(f"label mode {mode!r} needs FER+ votes (fer2013.npz, or --ferplus fer2013new.csv)")
    if mode == "ferplus-votes":
        dist = votes_to_fer_distribution(split.votes)
        keep = dist.sum(axis=1) > 0
        return split.subset(keep), dist[keep]
    if mode == "ferplus-majority":
        keep, fer = ferplus_eval_rows(split)
        return split.subset(keep), fer[keep]
    raise ValueError(f"unknown label mode {mode!r}; choose one of {', '.join(LABEL_MODES)}")


def ferplus_eval_rows(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """The standard FER+ majority-vote test protocol.

    Keeps rows with a majority whose label is an emotion (unknown/not-a-face and no-majority rows
    are dropped). Returns (keep mask, FER2013 class id per row); contempt-majority rows are kept
    with id -1, so a 7-class model is honestly scored wrong on them.
    """
    majority = ferplus_majority(split.votes)
    keep = (majority >= 0) & (majority != UNKNOWN) & (majority != NOT_A_FACE)
    return keep, ferplus_column_to_fer(majority)


def _read_fer2013_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, usage, images = [], [], []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            labels.append(int(row["emotion"]))
            usage.append(row["Usage"])
            images.append(np.array(row["pixels"].split(), np.uint8).reshape(48, 48))
    return np.stack(images), np.array(labels, np.int64), np.array(usage)


def _read_ferplus_csv(path: Path, n_rows: int) -> np.ndarray:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != n_rows:
        raise ValueError(f"{path}: {len(rows)} rows, but fer2013.csv has {n_rows}")
    return np.array([[int(r[c]) for c in FERPLUS_COLUMNS] for r in rows], np.uint8)


def describe_targets(fer2013_mix: float, fer2013_head: float = 0.0) -> str:
    """The training target in words, for the model's cards (edge_model.train builds it); a joint network
    (train --fer2013-head) also names its second head, so no card reads as if one target were all."""
    first = (f"the FER+ vote distribution (single votes dropped) x {1 - fer2013_mix:g} plus the original FER2013 "
             f"label x {fer2013_mix:g}")
    if not fer2013_head:
        return first
    return f"{first}; a second head learns the original FER2013 label (loss weight {fer2013_head:g})"
