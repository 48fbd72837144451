"""Real faces for tests: the project's own fixtures, and ../shared/data when this checkout has it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "daemon" / "moodcast" / "samples"
FER_FIXTURES = ROOT / "tests" / "fixtures" / "fer2013"
SHARED = ROOT.parent / "shared" / "data"
FRAMES = SHARED / "frames"
FER2013_NPZ = SHARED / "fer2013.npz"

needs_frames = pytest.mark.skipif(not (FRAMES / "labels.csv").exists(),
                                  reason="../shared/data/frames is absent (real photos, not redistributable)")
needs_fer2013 = pytest.mark.skipif(not FER2013_NPZ.exists(),
                                   reason="../shared/data/fer2013.npz is absent (the dataset is not redistributable)")


def fer_fixtures() -> list[tuple[Path, str]]:
    """(image, FER2013 label) for the handful of committed PrivateTest faces."""
    return [(p, p.stem.split("_")[0]) for p in sorted(FER_FIXTURES.glob("*.png"))]


def labelled_frames() -> list[tuple[Path, str]]:
    with (FRAMES / "labels.csv").open() as f:
        return [(FRAMES / row["file"], row["label"].lower()) for row in csv.DictReader(f) if row["label"]]
