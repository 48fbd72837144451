"""Would mirror averaging pay on the device? Measured on PublicTest for the chosen checkpoint:

    python -m edge_model.mirror --run runs/vgg16_w100_v3 --data ../shared/data/fer2013.npz

Mirror averaging runs the classifier on the face and on its horizontal flip and averages the logits. It costs
a second inference per face, so it is adopted only when it gains at least MIN_GAIN points on both FER2013
balanced accuracy and FER+ top-1 (PublicTest, the chosen epoch, head weight and tau) AND two inferences fit
the latency goal (classify one face, 2 threads, back to back p50 <= LATENCY_GOAL_MS; `make bench` measures one
inference). Writes RUN/mirror.json. PrivateTest is never read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge_model import dataset

MIN_GAIN = 0.005
LATENCY_GOAL_MS = 3.0


def gains(run: Path, val: dataset.Split) -> dict:
    """PublicTest metrics of the chosen candidate, single view and mirror-averaged, and the gains."""
    from edge_model.handoff import TrainedNetwork
    from edge_model.select import score
    from moodcast.vision.preprocess import prepare_batch

    net = TrainedNetwork(run)  # the folded head, adjustment applied: the device's function in float32
    chosen = json.loads((run / "selection.json").read_text())["chosen"]
    single = np.log(net.probabilities(prepare_batch(val.images)))
    flipped = np.log(net.probabilities(prepare_batch(val.images[:, :, ::-1])))
    out = {}
    for name, logits in (("single", single), ("mirror", (single + flipped) / 2)):
        c = score(logits, val, chosen["epoch"], chosen["tau"], chosen.get("fer2013_head_weight", 0.0))
        out[name] = {"ferplus_top1": c.ferplus_top1, "fer2013_balanced_accuracy": c.fer2013_balanced_accuracy}
    out["gain_points"] = {k: round(100 * (out["mirror"][k] - out["single"][k]), 2) for k in out["single"]}
    return out


def decide(measured: dict, single_inference_ms: float) -> dict:
    """The fixed rule: both gains at least MIN_GAIN, and two inferences within the latency goal."""
    enough = all(g >= 100 * MIN_GAIN for g in measured["gain_points"].values())
    fits = 2 * single_inference_ms <= LATENCY_GOAL_MS
    return {"adopted": enough and fits, "gains_enough": enough, "two_inferences_ms": 2 * single_inference_ms,
            "latency_goal_ms": LATENCY_GOAL_MS, "min_gain_points": 100 * MIN_GAIN}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge_model.mirror", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path, help="a run with selection.json (edge_model.select)")
    p.add_argument("--data", required=True, help="fer2013.npz, or fer2013.csv with --ferplus")
    p.add_argument("--ferplus", help="fer2013new.csv when --data is fer2013.csv")
    p.add_argument("--inference-ms", type=float, default=2.3,
                   help="one int8 inference, 2 threads, back to back p50 (make bench; 2.3 ms for v2.3 here)")
    args = p.parse_args(argv)
    val = dataset.load(args.data, args.ferplus)["PublicTest"]
    config = json.loads((args.run / "config.json").read_text())
    if config.get("limit"):
        val = val.subset(slice(0, config["limit"]))
    measured = gains(args.run, val)
    result = {**measured, **decide(measured, args.inference_ms)}
    (args.run / "mirror.json").write_text(json.dumps(result, indent=2) + "\n")
    g = measured["gain_points"]
    print(f"mirror averaging on PublicTest: FER+ top-1 {g['ferplus_top1']:+.2f} points, FER2013 balanced accuracy "
          f"{g['fer2013_balanced_accuracy']:+.2f} points; two inferences {result['two_inferences_ms']:.1f} ms "
          f"(goal {LATENCY_GOAL_MS:g} ms) -> {'adopted' if result['adopted'] else 'not adopted'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
