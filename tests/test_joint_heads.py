"""Model v3's joint heads: the trainer learns both label families, the selection weighs them by the fixed rule,
and the exported 7-way model computes exactly the chosen combination of the two heads."""

import json

import numpy as np
import pytest

from edge_model import heads
from edge_model.select import candidates
from moodcast.vision.preprocess import prepare_batch
from tests.test_train import fixture_faces, run_args, small_npz

torch = pytest.importorskip("torch", reason="needs the train extra (torch)")

from edge_model import dataset, select, train  # noqa: E402
from edge_model.handoff import TrainedNetwork  # noqa: E402
from edge_model.net import VGG16, to_nchw  # noqa: E402


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


def joint_run(tmp_path, *extra):
    data, run = small_npz(tmp_path / "small.npz"), tmp_path / "joint"
    assert train.main(run_args(data, run, "--fer2013-head", "1.0", *extra)) == 0
    return data, run


def test_the_joint_trainer_learns_a_second_head_on_the_original_labels(tmp_path):
    data, run = joint_run(tmp_path)
    assert np.load(run / "val_logits_002.npy").shape == (56, 14)
    assert torch.load(run / "epoch_002.pt")["head.7.weight"].shape[0] == 14
    assert json.loads((run / "config.json").read_text())["fer2013_head"] == 1.0
    # a single-head checkpoint (e.g. a shipped model handed back) starts both heads of a joint run
    single = tmp_path / "single"
    assert train.main(run_args(data, single, "--epochs", "1")) == 0
    assert train.main(run_args(data, tmp_path / "widened", "--fer2013-head", "0.5", "--epochs", "1", "--lr", "0",
                               "--init", str(single / "epoch_001.pt"))) == 0
    w = torch.load(tmp_path / "widened" / "epoch_001.pt")["head.7.weight"]
    assert torch.equal(w[:7], w[7:]) and torch.equal(w[:7], torch.load(single / "epoch_001.pt")["head.7.weight"])


def test_the_two_heads_fold_into_one_layer_equal_to_the_weighted_log_probabilities(tmp_path):
    """The combination the device runs: (1 - w) log p_FER+ + w log p_FER2013, folded into the output layer."""
    _, run = joint_run(tmp_path, "--epochs", "1")
    net = VGG16(14, 0.125).eval()
    state = torch.load(run / "epoch_001.pt")
    net.load_state_dict(state)
    x = to_nchw(prepare_batch(fixture_faces()[0]))
    with torch.no_grad():
        joint = net(x).double().numpy()
    for w in (0.0, 0.3, 1.0):
        folded = VGG16(7, 0.125).eval()
        folded.load_state_dict(heads.fold_state(state, w))
        with torch.no_grad():
            got = folded(x).double().numpy()
        np.testing.assert_allclose(got, heads.combine_logits(joint, w), atol=1e-4)
        mixed = (1 - w) * log_softmax(joint[:, :7]) + w * log_softmax(joint[:, 7:])
        np.testing.assert_allclose(softmax(got), softmax(mixed), atol=1e-5)
    assert not np.allclose(heads.combine_logits(joint, 0.0), heads.combine_logits(joint, 1.0))


def test_selection_tries_every_head_weight_and_the_exported_model_computes_the_chosen_one(tmp_path):
    pytest.importorskip("tensorflow", reason="needs the train extra (tensorflow-cpu)")
    from moodcast.vision.classifier import EmotionClassifier
    from quantize import convert

    data, run = joint_run(tmp_path)
    val = dataset.load(data)["PublicTest"]
    prior = np.asarray(json.loads((run / "config.json").read_text())["train_prior"])
    pool = candidates(run, val, prior)
    assert {c.fer2013_head_weight for c in pool} == set(heads.HEAD_WEIGHT_GRID)
    assert select.main(["--run", str(run), "--data", data]) == 0
    selection = json.loads((run / "selection.json").read_text())
    selection["chosen"]["fer2013_head_weight"] = 0.3  # a visible mix, whatever this tiny set preferred
    (run / "selection.json").write_text(json.dumps(selection))
    assert convert.main(["--run", str(run), "--data", data, "--out", str(tmp_path / "m" / "tiny"),
                         "--calibration", "64", "--max-delta", "100"]) == 0

    x = prepare_batch(fixture_faces()[0])
    net = VGG16(14, 0.125).eval()
    net.load_state_dict(torch.load(run / f"epoch_{selection['chosen']['epoch']:03d}.pt"))
    with torch.no_grad():
        joint = net(to_nchw(x)).double().numpy()
    expected = softmax(select.adjust(heads.combine_logits(joint, 0.3), np.asarray(selection["prior"]),
                                     selection["chosen"]["tau"]))
    np.testing.assert_allclose(TrainedNetwork(run).probabilities(x), expected, atol=1e-5)
    exported = EmotionClassifier(tmp_path / "m" / "tiny-float32.tflite")
    np.testing.assert_allclose(np.stack([exported.predict(xi) for xi in x]), expected, atol=1e-4)
    card = json.loads((tmp_path / "m" / "tiny-int8.json").read_text())
    assert card["selection"]["fer2013_head_weight"] == 0.3
    assert card["targets"].endswith("; a second head learns the original FER2013 label (loss weight 1)")


def test_mirror_averaging_is_measured_on_publictest_and_adopted_only_when_it_pays_and_fits(tmp_path):
    from edge_model import mirror

    data, run = joint_run(tmp_path, "--epochs", "1")
    assert select.main(["--run", str(run), "--data", data]) == 0
    assert mirror.main(["--run", str(run), "--data", data, "--inference-ms", "2.3"]) == 0
    result = json.loads((run / "mirror.json").read_text())
    assert set(result["gain_points"]) == {"ferplus_top1", "fer2013_balanced_accuracy"}
    assert result["two_inferences_ms"] == 4.6 and not result["adopted"]  # 2 x 2.3 ms is over the 3 ms goal
    both = {"gain_points": {"ferplus_top1": 0.6, "fer2013_balanced_accuracy": 0.5}}
    assert mirror.decide(both, 1.4)["adopted"]
    assert not mirror.decide({"gain_points": {"ferplus_top1": 2.0, "fer2013_balanced_accuracy": 0.4}}, 1.0)["adopted"]
