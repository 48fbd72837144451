"""Trained PyTorch weights -> the Keras VGG16 the TFLite converter reads, with the logit adjustment
folded into the last layer's bias so that the device pays nothing for it; and the way back, from a
shipped .tflite to PyTorch weights that training can continue from:

    python -m edge_model.handoff --from-tflite daemon/moodcast/models/moodcast-vgg16-w100-int8.tflite \\
        --data ../shared/data/fer2013.npz --out runs/vgg16_w100_r4

Layouts: Conv2d (out, in, kh, kw) -> Conv2D (kh, kw, in, out); Linear (out, in) -> Dense (in, out);
BatchNorm keeps (gamma, beta, running mean, running var). After five pools a 48x48 face is 1x1, so
NCHW and NHWC flatten to the same vector.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from edge_model import heads
from edge_model.architecture import BN_EPSILON, VGG16_BLOCKS
from edge_model.select import adjust

HANDOFF_RECORD = "handoff.json"  # beside the epoch_000.pt that main() writes


def keras_weights(state: dict, tau: float = 0.0, prior: np.ndarray | None = None) -> dict[str, list[np.ndarray]]:
    """{Keras layer name: weights} from a edge_model.net.VGG16 state_dict (tensors or arrays)."""
    arr = {k: np.asarray(v.detach().cpu().float().numpy() if hasattr(v, "detach") else v, np.float32)
           for k, v in state.items()}
    conv_keys = sorted({k.rsplit(".", 1)[0] for k in arr if k.startswith("features.") and arr[k].ndim == 4},
                       key=lambda k: int(k.split(".")[1]))
    out: dict[str, list[np.ndarray]] = {}
    for n, key in enumerate(conv_keys):
        block, conv = _block_position(n)
        bn = f"features.{int(key.split('.')[1]) + 1}"
        out[f"block{block}_conv{conv}"] = [arr[f"{key}.weight"].transpose(2, 3, 1, 0)]
        out[f"block{block}_bn{conv}"] = [arr[f"{bn}.weight"], arr[f"{bn}.bias"], arr[f"{bn}.running_mean"],
                                         arr[f"{bn}.running_var"]]
    dense_keys = sorted({k.rsplit(".", 1)[0] for k in arr if k.startswith("head.")}, key=lambda k: int(k.split(".")[1]))
    for name, key in zip(("fc1", "fc2", "emotion"), dense_keys, strict=False):
        out[name] = [arr[f"{key}.weight"].T.copy(), arr[f"{key}.bias"]]
    if tau:
        kernel, bias = out["emotion"]
        out["emotion"] = [kernel, adjust(bias[None].astype(np.float64), prior, tau)[0].astype(np.float32)]
    return out


def _block_position(n: int) -> tuple[int, int]:
    """The n-th conv layer (0-based) -> (block, conv) in 1-based Keras names."""
    for b, block in enumerate(VGG16_BLOCKS, start=1):
        if n < len(block):
            return b, n + 1
        n -= len(block)
    raise ValueError("more conv layers than VGG16 has")


def load_selected(run: Path) -> tuple[dict, dict, dict]:
    """(run config, selection.json, state_dict of the chosen epoch) of a finished run."""
    import torch

    config = json.loads((run / "config.json").read_text())
    selection_path = run / "selection.json"
    if not selection_path.exists():
        raise SystemExit(f"error: {selection_path} is missing: run python -m edge_model.select --run {run} first")
    selection = json.loads(selection_path.read_text())
    state = torch.load(run / f"epoch_{selection['chosen']['epoch']:03d}.pt", map_location="cpu")
    # a joint network's two heads become the one 7-way output the device runs (edge_model.heads)
    return config, selection, heads.fold_state(state, selection["chosen"].get("fer2013_head_weight", 0.0))


def keras_model(run: Path):
    """The chosen checkpoint of a run as a Keras model, logit adjustment folded in."""
    from edge_model.model import build_vgg16

    config, selection, state = load_selected(run)
    model = build_vgg16(len(config["classes"]), config["width"])
    weights = keras_weights(state, selection["chosen"]["tau"], np.asarray(selection["prior"]))
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)
    return model


class TrainedNetwork:
    """The chosen checkpoint in PyTorch float32 with the adjustment applied: what the card calls the
    trained network, against which the .tflite files are checked. Loaded once, run on many batches."""

    def __init__(self, run: Path):
        from edge_model.net import VGG16

        config, selection, state = load_selected(run)
        self.classes = config["classes"]
        self.prior, self.tau = np.asarray(selection["prior"]), selection["chosen"]["tau"]
        self.model = VGG16(len(self.classes), config["width"])
        self.model.load_state_dict(state)
        self.model.eval()

    def probabilities(self, faces_nhwc: np.ndarray, batch: int = 512) -> np.ndarray:
        import torch

        from edge_model.net import to_nchw

        with torch.no_grad():
            logits = np.concatenate([self.model(to_nchw(faces_nhwc[i:i + batch])).numpy()
                                     for i in range(0, len(faces_nhwc), batch)])
        logits = adjust(logits.astype(np.float64), self.prior, self.tau)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# --- the way back: a shipped .tflite -> a trainable state_dict -------------------------------------------
# Training checkpoints live in runs/, which a fresh checkout does not have; the shipped model always
# exists. TFLite has folded each BatchNorm into its conv (kernel * gamma / sigma, beta - gamma * mu / sigma)
# and the logit adjustment into the last bias, so both are rebuilt: each BatchNorm adds exactly the folded
# bias in eval mode, and gamma and the running statistics are set from real faces so that training mode
# (batch statistics) starts from nearly the same function.

def tflite_weights(path: Path) -> dict[str, np.ndarray]:
    """{tensor name: float32 array} of a .tflite's constant weights, int8 ones dequantized per channel."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path))
    out = {}
    for detail in interpreter.get_tensor_details():
        q = detail["quantization_parameters"]
        if detail["dtype"] not in (np.int8, np.int32, np.float32) or len(detail["shape"]) not in (1, 2, 4):
            continue
        try:
            value = interpreter.get_tensor(detail["index"])
        except ValueError:  # an activation: it has no data before a run
            continue
        if len(q["scales"]):
            shape = [-1 if d == q["quantized_dimension"] else 1 for d in range(value.ndim)]
            value = (value.astype(np.float64) - q["zero_points"].reshape(shape)) * q["scales"].reshape(shape)
        out[detail["name"]] = value.astype(np.float32)
    return out


def state_from_tflite(path: Path, prior: np.ndarray, tau: float) -> dict[str, np.ndarray]:
    """An edge_model.net.VGG16 state_dict (arrays) from a moodcast VGG16 .tflite, logit adjustment taken out.
    BatchNorm is the identity plus the folded bias; recalibrate_batchnorm then gives it real statistics."""
    tensors = tflite_weights(path)

    def find(fragment: str, ndim: int) -> np.ndarray:
        """The one tensor of that rank with `fragment` among its ';'-joined names (weight and bias share some)."""
        hits = [v for k, v in tensors.items() if v.ndim == ndim and any(fragment in part for part in k.split(";"))]
        if len(hits) != 1:
            raise ValueError(f"expected one {ndim}-d tensor named like {fragment!r}, found {len(hits)}")
        return hits[0]

    state: dict[str, np.ndarray] = {}
    index = 0
    for b, block in enumerate(VGG16_BLOCKS, start=1):
        for c in range(1, len(block) + 1):
            kernel = find(f"block{b}_conv{c}_1/convolution", 4)  # (out, kh, kw, in)
            bias = find(f"block{b}_bn{c}_1/batchnorm/add_1", 1)
            state[f"features.{index}.weight"] = kernel.transpose(0, 3, 1, 2).copy()
            bn = f"features.{index + 1}"
            state[f"{bn}.weight"] = np.full_like(bias, np.sqrt(1 - BN_EPSILON))  # / sqrt(var + eps) = 1
            state[f"{bn}.bias"] = bias
            state[f"{bn}.running_mean"] = np.zeros_like(bias)
            state[f"{bn}.running_var"] = np.full_like(bias, 1 - BN_EPSILON)
            index += 3  # conv, BatchNorm, ReLU
        index += 1  # the block's pool
    for i, name in zip((1, 4, 7), ("fc1", "fc2", "emotion"), strict=True):  # after each Dropout
        state[f"head.{i}.weight"] = find(f"{name}_1/MatMul", 2)  # (out, in), as nn.Linear keeps it
        state[f"head.{i}.bias"] = find(f"{name}_1/BiasAdd", 1)
    state["head.7.bias"] = adjust(state["head.7.bias"][None].astype(np.float64), prior, -tau)[0].astype(np.float32)
    return state


def recalibrate_batchnorm(model, faces_nchw) -> None:
    """Give each identity-plus-bias BatchNorm (state_from_tflite) the per-channel mean and variance of its
    conv's output on real faces, with gamma = sqrt(var + eps) and beta = mean + bias: the same function in
    eval mode, and close to it in training mode."""
    import torch

    stats = {}

    def record(bn):
        def hook(_module, inputs, _output):
            z = inputs[0].double()
            stats[bn] = (z.mean(dim=(0, 2, 3)), z.var(dim=(0, 2, 3)))
        return hook

    pairs = model.convs()
    handles = [bn.register_forward_hook(record(bn)) for _, bn in pairs]
    model.eval()
    with torch.no_grad():
        model(faces_nchw)
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        for _, bn in pairs:
            mean, var = stats[bn]
            bias = bn.bias.double() - bn.weight.double() * bn.running_mean.double() / torch.sqrt(
                bn.running_var.double() + bn.eps)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.copy_(mean + bias)


def parse_args(argv=None):
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m edge_model.handoff",
        description="Start a training run from a shipped .tflite: writes OUT/epoch_000.pt (for train --init) and "
                    "OUT/val_logits_000.npy, so that edge_model.select weighs the shipped model against new epochs.")
    p.add_argument("--from-tflite", required=True, type=Path,
                   help="a moodcast VGG16 .tflite with its .json card beside it")
    p.add_argument("--data", required=True, help="fer2013.npz, or fer2013.csv with --ferplus")
    p.add_argument("--ferplus", help="fer2013new.csv when --data is fer2013.csv")
    p.add_argument("--out", required=True, type=Path, help="the new run's directory")
    p.add_argument("--faces", type=int, default=512, help="Training faces that set the BatchNorm statistics")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    import torch

    from edge_model import dataset
    from edge_model.net import VGG16, to_nchw
    from edge_model.train import predict_logits
    from moodcast.vision.preprocess import prepare_batch

    args = parse_args(argv)
    card_path = args.from_tflite.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text())
        tau = card["selection"]["tau"]
        # older cards (before quantize.convert wrote adjustment_prior) hold the prior only in the last training stage
        prior = np.asarray(card.get("adjustment_prior") or card["training"]["stages"][-1]["config"]["train_prior"])
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"error: {card_path}: no training prior and tau to take the adjustment out ({exc})") from None
    model = VGG16(len(card["labels"]), card["width"])
    try:
        state = state_from_tflite(args.from_tflite, prior, tau)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    except (ValueError, RuntimeError) as exc:  # not a moodcast VGG16 of this width, or not a model at all
        raise SystemExit(f"error: {args.from_tflite}: {str(exc).splitlines()[0]}") from None
    splits = dataset.load(args.data, args.ferplus)
    train = splits["Training"]
    rows = np.random.default_rng(args.seed).choice(len(train), args.faces, replace=False)
    recalibrate_batchnorm(model, to_nchw(prepare_batch(train.images[rows])))
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "epoch_000.pt")
    # where the weights came from, and the cycles that made them, for the model card (edge_model.card)
    record = {"from_tflite": str(args.from_tflite), "sha256": hashlib.sha256(args.from_tflite.read_bytes()).hexdigest(),
              "command": "python -m edge_model.handoff " + shlex.join(sys.argv[1:] if argv is None else argv),
              "stages": card.get("training", {}).get("stages", [])}
    (args.out / HANDOFF_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    np.save(args.out / "val_logits_000.npy", predict_logits(model, to_nchw(prepare_batch(splits["PublicTest"].images))))
    print(f"wrote {args.out}/epoch_000.pt and val_logits_000.npy from {args.from_tflite} (tau {tau:g} taken out)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
