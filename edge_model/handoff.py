"""Trained PyTorch weights -> the Keras VGG16 the TFLite converter reads, with the logit adjustment
folded into the last layer's bias so that the device pays nothing for it.

Layouts: Conv2d (out, in, kh, kw) -> Conv2D (kh, kw, in, out); Linear (out, in) -> Dense (in, out);
BatchNorm keeps (gamma, beta, running mean, running var). After five pools a 48x48 face is 1x1, so
NCHW and NHWC flatten to the same vector.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge_model.architecture import VGG16_BLOCKS
from edge_model.select import adjust


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
    return config, selection, state


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
