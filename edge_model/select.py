"""Pick the checkpoint and the logit adjustment on PublicTest, by a rule fixed before training.

    python -m edge_model.select --run runs/vgg16_w100 --data ../shared/data/fer2013.npz

The rule (RULE below, also written into selection.json and the model card), fixed before model v3 was
trained: every saved epoch is scored on PublicTest at every logit adjustment tau of TAU_GRID
(logits - tau * log(training prior), Menon et al. 2021) and, for a joint network, at every weight w of
the FER2013 head (edge_model.heads). Both label families count: among the candidates whose FER+ top-1
(majority protocol) is within 1 point of the best candidate's, the one with the highest balanced
accuracy on the original FER2013 labels wins. PrivateTest is never read.

Models up to v2.3 were chosen by FER+ alone (the highest FER+ macro-F1 within the same 1 point), which
leant towards neutral: a clearly angry face came out neutral.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_model import dataset, heads
from edge_model.metrics import classification_metrics

TAU_GRID = tuple(q / 4 for q in range(-2, 9))  # -0.5 .. 2.0
TOP1_SLACK = 0.01
RULE = ("On PublicTest, score every epoch's checkpoint at every logit adjustment tau in "
        f"{list(TAU_GRID)} (logits - tau * log(training prior)) and, for a network with a FER2013 head, at every "
        f"weight w of that head in {list(heads.HEAD_WEIGHT_GRID)} (output = (1 - w) * FER+ head + w * FER2013 head); "
        f"keep the candidates whose FER+ top-1 (majority protocol) is within {100 * TOP1_SLACK:g} point of the best "
        "candidate's; choose the highest balanced accuracy on the original FER2013 labels among them (ties: the "
        "higher FER+ macro-F1). PrivateTest is never used.")


@dataclass(frozen=True)
class Candidate:
    epoch: int
    tau: float
    ferplus_top1: float
    ferplus_macro_f1: float
    ferplus_min_recall: float
    fer2013_top1: float
    fer2013_balanced_accuracy: float
    fer2013_head_weight: float = 0.0  # w of edge_model.heads; 0 for a single-head network


def adjust(logits: np.ndarray, prior: np.ndarray, tau: float) -> np.ndarray:
    """Post-hoc logit adjustment: a per-class constant, so it folds into the last layer's bias."""
    return logits - tau * np.log(prior)


def score(logits: np.ndarray, val: dataset.Split, epoch: int, tau: float, w: float = 0.0) -> Candidate:
    keep, fer = dataset.ferplus_eval_rows(val)
    pred = logits.argmax(axis=1)
    plus = classification_metrics(fer[keep], pred[keep])
    orig = classification_metrics(val.labels, pred)
    return Candidate(epoch, tau, plus["accuracy"], plus["macro_f1"], plus["min_recall"],
                     orig["accuracy"], orig["balanced_accuracy"], w)


def candidates(run: Path, val: dataset.Split, prior: np.ndarray) -> list[Candidate]:
    out = []
    for path in sorted(run.glob("val_logits_*.npy")):
        epoch = int(path.stem.rsplit("_", 1)[1])
        if not (run / f"epoch_{epoch:03d}.pt").exists():
            continue  # logits of a checkpoint that was not kept cannot be shipped
        logits = np.load(path)
        weights = heads.HEAD_WEIGHT_GRID if heads.is_joint(logits.shape[1]) else (0.0,)
        out += [score(adjust(heads.combine_logits(logits, w), prior, tau), val, epoch, tau, w)
                for w in weights for tau in TAU_GRID]
    return out


def choose(pool: list[Candidate]) -> Candidate:
    best_top1 = max(c.ferplus_top1 for c in pool)
    eligible = [c for c in pool if c.ferplus_top1 >= best_top1 - TOP1_SLACK - 1e-12]
    return max(eligible, key=lambda c: (c.fer2013_balanced_accuracy, c.ferplus_macro_f1, -abs(c.tau)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m edge_model.select", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path, help="training run directory (val_logits_*.npy, epoch_*.pt)")
    p.add_argument("--data", required=True, help="fer2013.npz, or fer2013.csv with --ferplus")
    p.add_argument("--ferplus", help="fer2013new.csv when --data is fer2013.csv")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = json.loads((args.run / "config.json").read_text())
    val = dataset.load(args.data, args.ferplus)["PublicTest"]
    if config.get("limit"):
        val = val.subset(slice(0, config["limit"]))
    prior = np.asarray(config["train_prior"], np.float64)
    pool = candidates(args.run, val, prior)
    if not pool:
        raise SystemExit(f"error: {args.run}: no epoch_*.pt with val_logits_*.npy to choose from")
    chosen = choose(pool)
    per_epoch = [choose([c for c in pool if c.epoch == e]) for e in sorted({c.epoch for c in pool})]
    unadjusted = next(c for c in pool if c.epoch == chosen.epoch and c.tau == 0
                      and c.fer2013_head_weight == chosen.fer2013_head_weight)
    selection = {"rule": RULE, "chosen": asdict(chosen), "prior": prior.tolist(), "unadjusted": asdict(unadjusted),
                 "best_per_epoch": [asdict(c) for c in per_epoch]}
    (args.run / "selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    print(f"chosen: epoch {chosen.epoch}, tau {chosen.tau:g}, FER2013 head weight {chosen.fer2013_head_weight:g}: "
          f"PublicTest FER+ top-1 {100 * chosen.ferplus_top1:.2f} %, macro-F1 {100 * chosen.ferplus_macro_f1:.2f} %, "
          f"lowest recall {100 * chosen.ferplus_min_recall:.1f} %, "
          f"FER2013 balanced accuracy {100 * chosen.fer2013_balanced_accuracy:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
