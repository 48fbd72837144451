"""Train the VGG16 emotion model: seeded, resumable, metrics per epoch in CSV.

    python -m edge_model.train --data ../shared/data/fer2013.npz --out runs/vgg16_w050 --width 0.5

Model selection uses PublicTest only; PrivateTest is never touched here (see edge_model.evaluate).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import keras
import numpy as np

from edge_model import dataset
from edge_model.augment import augment_batch
from edge_model.model import build_vgg16, count_macs
from moodcast.labels import FER2013_CLASSES
from moodcast.preprocess import prepare_batch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m edge_model.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="fer2013.npz, or fer2013.csv (with --ferplus for FER+ votes)")
    p.add_argument("--ferplus", help="fer2013new.csv with the FER+ votes, when --data is fer2013.csv")
    p.add_argument("--out", required=True, type=Path, help="run directory (checkpoints, metrics.csv, config.json)")
    p.add_argument("--label-mode", default="ferplus-votes", choices=dataset.LABEL_MODES)
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of every layer (1.0 = VGG16)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02, help="peak learning rate (SGD + Nesterov, cosine decay)")
    p.add_argument("--warmup", type=int, default=2, help="epochs of linear warm-up")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bf16", action="store_true",
                   help="mixed bfloat16 compute (float32 weights): about 2x faster on CPUs with AVX512_BF16 and on GPUs")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training and validation faces (smoke tests)")
    return p.parse_args(argv)


def learning_rate(epoch: int, args: argparse.Namespace) -> float:
    if epoch < args.warmup:
        return args.lr * (epoch + 1) / (args.warmup + 1)
    progress = (epoch - args.warmup) / max(1, args.epochs - args.warmup)
    return 0.5 * args.lr * (1 + math.cos(math.pi * progress))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = dataset.load(args.data, args.ferplus)
    train, y_train = dataset.targets(splits["Training"], args.label_mode)
    val_mode = "fer2013" if args.label_mode == "fer2013" else "ferplus-majority"
    val, y_val = dataset.targets(splits["PublicTest"], val_mode)
    if args.limit:
        train, y_train = train.subset(slice(0, args.limit)), y_train[: args.limit]
        val, y_val = val.subset(slice(0, args.limit)), y_val[: args.limit]
    if y_train.ndim == 1:
        y_train = np.eye(len(FER2013_CLASSES), dtype=np.float32)[y_train]
    x_val = prepare_batch(val.images)

    keras.utils.set_random_seed(args.seed)
    if args.bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_vgg16(len(FER2013_CLASSES), args.width)
    model.compile(
        optimizer=keras.optimizers.SGD(args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    start_epoch, best = _resume(model, args.out)
    _write_config(args, model, count_macs(model), len(train), len(val))
    print(f"training {model.name}: {model.count_params():,} params, {len(train)} train / {len(val)} val faces, "
          f"epochs {start_epoch + 1}..{args.epochs}", flush=True)

    callbacks = [
        keras.callbacks.LearningRateScheduler(lambda e: learning_rate(e, args)),
        EpochEnd(args.out, x_val, y_val, best),
    ]
    model.fit(Batches(train.images, y_train, args.batch, args.seed, start_epoch), epochs=args.epochs,
              initial_epoch=start_epoch, callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    print(f"best PublicTest accuracy {callbacks[1].best:.4f}; weights in {args.out / 'best.weights.h5'}")
    return 0


def _resume(model, out: Path) -> tuple[int, float]:
    """Continue from the last finished epoch, optimizer state included."""
    state_path = out / "state.json"
    if not state_path.exists():
        return 0, 0.0
    state = json.loads(state_path.read_text())
    model.load_weights(out / "last.weights.h5")
    model.optimizer.build(model.trainable_variables)
    opt = np.load(out / "last.optimizer.npz")
    for var in model.optimizer.variables:
        if var.path in opt:
            var.assign(opt[var.path])
    print(f"resuming after epoch {state['epoch']} (best PublicTest accuracy {state['best']:.4f})", flush=True)
    return state["epoch"], state["best"]


def _write_config(args, model, macs: int, n_train: int, n_val: int) -> None:
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(model=model.name, params=model.count_params(), macs=macs, train_faces=n_train,
                  val_faces=n_val, classes=list(FER2013_CLASSES), hardware=_hardware())
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _hardware() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, keras {keras.__version__} ({keras.backend.backend()} backend)"


class Batches(keras.utils.PyDataset):
    """Shuffled, augmented batches; the order and augmentation depend only on (seed, epoch)."""

    def __init__(self, images, targets, batch, seed, epoch=0):
        super().__init__()
        self.images, self.targets, self.batch, self.seed = images, targets, batch, seed
        self._start_epoch(epoch)

    def _start_epoch(self, epoch):
        self.epoch = epoch
        self.order = np.random.default_rng((self.seed, epoch)).permutation(len(self.images))

    def __len__(self):
        return len(self.images) // self.batch

    def __getitem__(self, i):
        idx = self.order[i * self.batch:(i + 1) * self.batch]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        return augment_batch(self.images[idx], rng), self.targets[idx]

    def on_epoch_end(self):
        self._start_epoch(self.epoch + 1)


class EpochEnd(keras.callbacks.Callback):
    """Validate on PublicTest, keep the best weights, checkpoint for resume, log a CSV row."""

    def __init__(self, out: Path, x_val, y_val, best: float):
        super().__init__()
        self.out, self.x_val, self.y_val, self.best = out, x_val, y_val, best
        self.t0 = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        pred = self.model.predict(self.x_val, batch_size=256, verbose=0).argmax(axis=1)
        val_acc = float((pred == self.y_val).mean())
        if val_acc > self.best:
            self.best = val_acc
            self.model.save_weights(self.out / "best.weights.h5")
        self.model.save_weights(self.out / "last.weights.h5")
        np.savez(self.out / "last.optimizer.npz", **{v.path: np.asarray(v) for v in self.model.optimizer.variables})
        (self.out / "state.json").write_text(json.dumps({"epoch": epoch + 1, "best": self.best}) + "\n")
        row = {"epoch": epoch + 1, "lr": float(self.model.optimizer.learning_rate), "loss": logs.get("loss"),
               "train_acc": logs.get("accuracy"), "val_acc": val_acc, "best_val_acc": self.best,
               "seconds": round(time.time() - self.t0, 1)}
        path = self.out / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(f"epoch {epoch + 1}: val_acc {val_acc:.4f} (best {self.best:.4f}) lr {row['lr']:.5f} "
              f"{row['seconds']}s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
