"""A training run's chosen checkpoint -> int8 and float32 .tflite (+ JSON card), verified against each other.

    python -m quantize.convert --run runs/vgg16_w100 --data ../shared/data/fer2013.npz \\
        --out daemon/moodcast/models/moodcast-vgg16-w100

The checkpoint and logit adjustment come from RUN/selection.json (edge_model.select); the weights
go through edge_model.handoff into Keras, with the adjustment folded into the output bias.

Writes OUT-int8.tflite and OUT-float32.tflite, each with a .json card beside it holding the
labels the daemon reads. Fails (exit 1) when int8 loses more than --max-delta points of top-1
accuracy against float32 on PrivateTest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from edge_model import dataset
from edge_model.evaluate import predict_tflite
from moodcast.labels import FER2013_CLASSES
from moodcast.vision.preprocess import prepare_batch


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m quantize.convert", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path,
                   help="training run directory (config.json, selection.json, epoch_*.pt)")
    p.add_argument("--data", required=True, help="fer2013.npz or fer2013.csv")
    p.add_argument("--ferplus", help="fer2013new.csv when --data is fer2013.csv")
    p.add_argument("--out", required=True, type=Path,
                   help="output path stem, e.g. daemon/moodcast/models/moodcast-vgg16-w050")
    p.add_argument("--calibration", type=int, default=400, help="Training faces for int8 calibration")
    p.add_argument("--max-delta", type=float, default=1.0, help="max int8 accuracy loss vs float32, in points")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from edge_model.handoff import keras_model
    from edge_model.model import count_macs

    run_config = json.loads((args.run / "config.json").read_text())
    model = keras_model(args.run)  # refuses a run without selection.json
    selection = json.loads((args.run / "selection.json").read_text())
    run_config.update(macs=count_macs(model), selection=selection["chosen"], adjustment_prior=selection["prior"])
    splits = dataset.load(args.data, args.ferplus)

    rng = np.random.default_rng(args.seed)
    train = splits["Training"]
    calib = prepare_batch(train.images[rng.choice(len(train), args.calibration, replace=False)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in ("int8", "float32"):
        path = args.out.with_name(f"{args.out.name}-{kind}.tflite")
        path.write_bytes(to_tflite(model, calib if kind == "int8" else None))
        write_card(path, run_config, kind, args.calibration)
        paths[kind] = path
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    return verify(paths, splits["PrivateTest"], args.max_delta)


def to_tflite(model, calibration: np.ndarray | None) -> bytes:
    """float32 .tflite, or full-integer int8 (int8 input and output) calibrated on real faces."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def write_card(path: Path, run_config: dict, kind: str, calibration: int) -> None:
    card = {
        "name": path.stem, "labels": list(FER2013_CLASSES), "input": "48x48 grayscale face crop, per-image "
                                                                     "standardised "
        "(moodcast.vision.preprocess.prepare_face)", "quantization": kind,
        "calibration": f"{calibration} random Training faces" if kind == "int8" else None,
        "architecture": run_config["model"], "width": run_config["width"], "params": run_config["params"],
        "macs": run_config["macs"], "targets": dataset.describe_targets(run_config["fer2013_mix"],
                                                                           run_config.get("fer2013_head", 0.0)),
        "class_weight_power": run_config["class_weight_power"],
        "selection": run_config["selection"], "file_bytes": path.stat().st_size,
        # the prior tau multiplies: with tau it takes the folded adjustment out again (edge_model.handoff)
        "adjustment_prior": run_config["adjustment_prior"],
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")


def verify(paths: dict, test: dataset.Split, max_delta: float) -> int:
    """Top-1 agreement and accuracy delta between int8 and float32 on PrivateTest (original labels)."""
    x = prepare_batch(test.images)
    pred = {kind: predict_tflite(path, x).argmax(axis=1) for kind, path in paths.items()}
    acc = {kind: float((p == test.labels).mean()) * 100 for kind, p in pred.items()}
    agreement = float((pred["int8"] == pred["float32"]).mean()) * 100
    delta = acc["float32"] - acc["int8"]
    print(f"PrivateTest FER2013 labels: float32 {acc['float32']:.2f} %, int8 {acc['int8']:.2f} %, "
          f"delta {delta:+.2f} points, top-1 agreement {agreement:.2f} %")
    for path in paths.values():
        card = json.loads(path.with_suffix(".json").read_text())
        card["int8_vs_float32"] = {"delta_points": round(delta, 2), "agreement_percent": round(agreement, 2)}
        path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    if delta > max_delta:
        print(f"error: int8 loses {delta:.2f} points (> --max-delta {max_delta})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
