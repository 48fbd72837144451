"""Two label families, one network: the joint heads and how they fold into the one 7-way output the device runs.

A joint model's last layer has 2 x 7 outputs: the first 7 are trained on the FER+ vote distribution, the
last 7 on the original FER2013 label. The device still runs a single 7-way output, their combination

    (1 - w) * log_softmax(ferplus logits) + w * log_softmax(fer2013 logits)

Log-softmax is the logits minus a per-face constant (logsumexp), and a per-face constant changes neither
the argmax nor the softmax, so that combination gives the same probabilities as the same weighted sum of the
two heads' logits. A weighted sum of two linear layers is one linear layer: the combination folds exactly
into the output layer's weights and bias, and costs the device nothing.
"""

from __future__ import annotations

import numpy as np

N_CLASSES = 7
OUTPUT_LAYER = "head.7"  # the last nn.Linear of edge_model.net.VGG16
# the weights w of the FER2013 head that edge_model.select tries; 0 is the FER+ head alone
HEAD_WEIGHT_GRID = tuple(round(q / 10, 1) for q in range(0, 11))


def is_joint(n_outputs: int) -> bool:
    return n_outputs == 2 * N_CLASSES


def combine_logits(logits: np.ndarray, w: float) -> np.ndarray:
    """(N, 14) joint logits -> (N, 7): (1 - w) * FER+ head + w * FER2013 head; (N, 7) logits pass unchanged."""
    if not is_joint(logits.shape[1]):
        return logits
    return (1 - w) * logits[:, :N_CLASSES] + w * logits[:, N_CLASSES:]


def fold_state(state: dict, w: float) -> dict:
    """A joint VGG16 state_dict -> the 7-way state_dict whose logits are combine_logits(joint logits, w).
    Tensors or arrays; a single-head state comes back unchanged."""
    weight, bias = state[f"{OUTPUT_LAYER}.weight"], state[f"{OUTPUT_LAYER}.bias"]
    if not is_joint(weight.shape[0]):
        return state
    folded = dict(state)
    folded[f"{OUTPUT_LAYER}.weight"] = (1 - w) * weight[:N_CLASSES] + w * weight[N_CLASSES:]
    folded[f"{OUTPUT_LAYER}.bias"] = (1 - w) * bias[:N_CLASSES] + w * bias[N_CLASSES:]
    return folded


def widen_state(state: dict) -> dict:
    """A 7-way torch state_dict -> a joint one whose two heads both start as the trained 7-way head, so a joint
    run can start from a shipped model (edge_model.handoff) without unlearning what it knows."""
    import torch

    weight, bias = state[f"{OUTPUT_LAYER}.weight"], state[f"{OUTPUT_LAYER}.bias"]
    if is_joint(weight.shape[0]):
        return state
    return {**state, f"{OUTPUT_LAYER}.weight": torch.cat([weight, weight]),
            f"{OUTPUT_LAYER}.bias": torch.cat([bias, bias])}
