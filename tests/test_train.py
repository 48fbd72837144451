"""The PyTorch trainer, checkpoint selection, the hand-off to Keras/TFLite and the bias folding.

Runs on a small npz made of the committed real FER2013 faces (the full dataset is not
redistributable), so it needs no ../shared and finishes in well under a minute on a CPU.
"""

import json

import cv2
import numpy as np
import pytest

from edge_model import dataset
from edge_model.ferplus import FERPLUS_COLUMNS, FERPLUS_TO_FER
from edge_model.select import Candidate, adjust, choose
from moodcast.labels import FER2013_CLASSES
from moodcast.vision.preprocess import prepare_batch
from tests.media import fer_fixtures

torch = pytest.importorskip("torch", reason="needs the train extra (torch)")

from edge_model import train  # noqa: E402
from edge_model.handoff import TrainedNetwork  # noqa: E402


def fixture_faces() -> tuple[np.ndarray, np.ndarray]:
    faces = [(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), FER2013_CLASSES.index(label)) for p, label in fer_fixtures()]
    return np.stack([f for f, _ in faces]), np.array([y for _, y in faces])


def small_npz(path, per_split=(224, 56, 56)) -> str:
    """Real faces, jittered copies, FER+ votes that mostly agree with the label (8 of 10)."""
    faces, labels = fixture_faces()
    rng = np.random.default_rng(0)
    n = sum(per_split)
    pick = np.arange(n) % len(faces)
    images = np.clip(faces[pick].astype(np.int16) + rng.integers(-12, 13, (n, 48, 48)), 0, 255).astype(np.uint8)
    votes = np.zeros((n, len(FERPLUS_COLUMNS)), np.uint8)
    column = {fer: FERPLUS_COLUMNS.index(col) for col, fer in FERPLUS_TO_FER.items()}
    for i, y in enumerate(labels[pick]):
        votes[i, column[int(y)]] = 8
        votes[i, column[int((y + 1) % 7)]] = 2
    usage = np.repeat(["Training", "PublicTest", "PrivateTest"], per_split)
    np.savez(path, images=images, labels=labels[pick].astype(np.int8), usage=usage, ferplus_votes=votes)
    return str(path)


def run_args(data, out, *extra) -> list[str]:
    return ["--data", data, "--out", str(out), "--width", "0.125", "--epochs", "2", "--batch", "32", "--threads", "2",
            *extra]


def test_training_resumes_exactly(tmp_path):
    data = small_npz(tmp_path / "small.npz")
    assert train.main(run_args(data, tmp_path / "straight")) == 0
    assert train.main(run_args(data, tmp_path / "resumed", "--stop-after", "1")) == 0
    assert not (tmp_path / "resumed" / "epoch_002.pt").exists()
    assert train.main(run_args(data, tmp_path / "resumed")) == 0
    a, b = (torch.load(tmp_path / d / "epoch_002.pt") for d in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (tmp_path / "resumed" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2"]
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["train_faces"] == 224 and sum(config["train_prior"]) == pytest.approx(1, abs=1e-4)


def test_a_warm_restart_starts_from_the_given_weights(tmp_path):
    data = small_npz(tmp_path / "small.npz")
    assert train.main(run_args(data, tmp_path / "first")) == 0
    # lr 0: SGD leaves every weight where --init put it (BatchNorm's running statistics still move)
    assert train.main(run_args(data, tmp_path / "again", "--init", str(tmp_path / "first" / "epoch_002.pt"),
                               "--epochs", "1", "--lr", "0")) == 0
    a, b = (torch.load(tmp_path / d / f) for d, f in (("first", "epoch_002.pt"), ("again", "epoch_001.pt")))
    weights = [k for k in a if k.endswith("weight")]
    assert weights and all(torch.equal(a[k], b[k]) for k in weights)
    assert json.loads((tmp_path / "again" / "config.json").read_text())["init"].endswith("epoch_002.pt")


def test_targets_mix_votes_and_the_original_label(tmp_path):
    split = dataset.load(small_npz(tmp_path / "small.npz"))["Training"]
    _, y = train.training_targets(split, fer2013_mix=0.25)
    np.testing.assert_allclose(y.sum(axis=1), 1, atol=1e-6)
    first = y[0]  # 8 votes for its label, 2 for the next class: 0.75 * (0.8, 0.2) + 0.25 * (1, 0)
    assert first[split.labels[0]] == pytest.approx(0.85) and first[(split.labels[0] + 1) % 7] == pytest.approx(0.15)


def test_class_weights_favour_rare_classes_and_keep_the_mean_weight():
    y = np.eye(7, dtype=np.float32)[[3] * 90 + [1] * 10]
    w = train.class_weights(y, power=0.5)
    assert w[1] > w[3] and float((y @ w).mean()) == pytest.approx(1.0)
    assert np.allclose(train.class_weights(y, power=0.0), 1.0)


def candidate(epoch, tau, top1, f1, balanced=0.0, w=0.0):
    return Candidate(epoch, tau, top1, f1, 0.0, 0.0, balanced, w)


def test_selection_rule_prefers_fer2013_balanced_accuracy_within_a_point_of_the_best_ferplus_top1():
    pool = [candidate(5, 0.0, 0.850, 0.60, 0.55), candidate(5, 1.0, 0.841, 0.66, 0.60, w=0.3),  # within 1 point
            candidate(6, 2.0, 0.820, 0.70, 0.66),  # higher balanced accuracy but 3 points down: not eligible
            candidate(6, 0.0, 0.845, 0.62, 0.58), candidate(7, 0.5, 0.8405, 0.50, 0.60)]  # tie: macro-F1 decides
    chosen = choose(pool)
    assert (chosen.epoch, chosen.tau, chosen.fer2013_head_weight) == (5, 1.0, 0.3)


def converted_tiny_run(tmp_path):
    """(data, run): a tiny trained run, selected with a visible adjustment forced in, converted to tmp/m/tiny-*."""
    from edge_model import select
    from quantize import convert

    data, run = small_npz(tmp_path / "small.npz"), tmp_path / "run"
    assert train.main(run_args(data, run)) == 0
    assert select.main(["--run", str(run), "--data", data]) == 0
    selection = json.loads((run / "selection.json").read_text())
    # force a visible adjustment, whatever PublicTest preferred (this small set's prior is uniform)
    selection["chosen"]["tau"], selection["prior"] = 1.0, [0.1, 0.02, 0.05, 0.3, 0.15, 0.13, 0.25]
    (run / "selection.json").write_text(json.dumps(selection))
    assert convert.main(["--run", str(run), "--data", data, "--out", str(tmp_path / "m" / "tiny"),
                         "--calibration", "64", "--max-delta", "100"]) == 0
    return data, run


def test_trained_network_survives_the_hand_off_with_the_adjustment_folded_in(tmp_path):
    """torch -> Keras -> float32 .tflite equals the adjusted PyTorch network on real faces."""
    pytest.importorskip("tensorflow", reason="needs the train extra (tensorflow-cpu)")
    from moodcast.vision.classifier import EmotionClassifier

    _, run = converted_tiny_run(tmp_path)
    selection = json.loads((run / "selection.json").read_text())
    x = prepare_batch(fixture_faces()[0])
    expected = TrainedNetwork(run).probabilities(x)
    unadjusted = dict(selection, chosen=dict(selection["chosen"], tau=0.0))
    (run / "selection.json").write_text(json.dumps(unadjusted))
    assert np.abs(TrainedNetwork(run).probabilities(x) - expected).max() > 1e-3  # tau really changes the output

    flt = EmotionClassifier(tmp_path / "m" / "tiny-float32.tflite")
    got = np.stack([flt.predict(xi) for xi in x])
    assert np.abs(got - expected).max() < 1e-4
    int8 = EmotionClassifier(tmp_path / "m" / "tiny-int8.tflite")
    assert int8.quantized and np.abs(np.stack([int8.predict(xi) for xi in x]) - expected).max() < 0.1
    card = json.loads((tmp_path / "m" / "tiny-int8.json").read_text())
    assert card["selection"]["tau"] == 1.0 and card["labels"] == list(FER2013_CLASSES)


def test_a_shipped_tflite_hands_back_trainable_weights_that_compute_the_same_function(tmp_path):
    """.tflite -> PyTorch (BatchNorm unfolded, adjustment out) -> the same probabilities; train --init takes it."""
    pytest.importorskip("tensorflow", reason="needs the train extra (tensorflow-cpu)")
    from edge_model import handoff
    from edge_model.net import VGG16, to_nchw

    data, run = converted_tiny_run(tmp_path)
    x = prepare_batch(fixture_faces()[0])
    trained = TrainedNetwork(run)

    for kind, tolerance in (("float32", 1e-4), ("int8", 0.1)):
        back = tmp_path / f"back-{kind}"
        assert handoff.main(["--from-tflite", str(tmp_path / "m" / f"tiny-{kind}.tflite"), "--data", data,
                             "--out", str(back), "--faces", "64"]) == 0
        trained.model.load_state_dict(torch.load(back / "epoch_000.pt"))  # the same architecture, rebuilt weights
        assert np.abs(trained.probabilities(x) - TrainedNetwork(run).probabilities(x)).max() < tolerance
        assert np.load(back / "val_logits_000.npy").shape == (56, 7)

    # BatchNorm now carries real statistics: training mode (batch statistics) starts near eval mode
    net = VGG16(7, 0.125)
    net.load_state_dict(torch.load(tmp_path / "back-float32" / "epoch_000.pt"))
    faces = to_nchw(x)
    with torch.no_grad():
        evaluated = net.eval()(faces)
        net.train().apply(lambda m: m.eval() if isinstance(m, torch.nn.Dropout) else None)
        batch_stats = net(faces)
    assert torch.allclose(evaluated, batch_stats, atol=0.5)
    # and the trainer starts from it
    assert train.main(run_args(data, tmp_path / "continued", "--init", str(tmp_path / "back-int8" / "epoch_000.pt"),
                               "--epochs", "1")) == 0


def test_adjustment_is_a_per_class_constant():
    logits = np.array([[1.0, 2.0], [0.5, -1.0]])
    prior = np.array([0.8, 0.2])
    np.testing.assert_allclose(adjust(logits, prior, 1.0) - logits, np.tile(-np.log(prior), (2, 1)))


def test_handing_back_a_model_that_is_not_a_moodcast_vgg16_is_a_one_line_error(tmp_path):
    import shutil

    from edge_model import handoff
    from moodcast.vision.blazeface import model_path

    wrong = tmp_path / "wrong-int8.tflite"
    shutil.copyfile(model_path("short"), wrong)
    with pytest.raises(SystemExit, match=r"no training prior and tau"):
        handoff.main(["--from-tflite", str(wrong), "--data", "absent.npz", "--out", str(tmp_path / "o")])
    card = {"labels": list(FER2013_CLASSES), "width": 1.0, "selection": {"tau": 0.0}, "adjustment_prior": [1 / 7] * 7}
    wrong.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(SystemExit, match=rf"error: {wrong}: expected one 4-d tensor named like 'block1_conv1_1"):
        handoff.main(["--from-tflite", str(wrong), "--data", "absent.npz", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
