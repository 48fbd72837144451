"""Train the VGG16 emotion model in PyTorch: seeded, exactly resumable, the same on CPU and GPU.

    python -m edge_model.train --data ../shared/data/fer2013.npz --out runs/vgg16_w100 --epochs 24

Targets are the FER+ vote distributions (optionally mixed with the original FER2013 label), with
class re-weighting so that disgust and fear are learnt at all. With --fer2013-head the network has a
second 7-way head on the same trunk, trained on the original FER2013 label at the same time: both label
families are learnt, and edge_model.select folds the two heads into the one output the device runs
(edge_model.heads). After every epoch the PublicTest
logits are saved; edge_model.select later picks the checkpoint and the logit adjustment on
PublicTest only. PrivateTest is never touched here.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edge_model import dataset, heads
from edge_model.architecture import model_name
from edge_model.augment import augment_batch
from edge_model.net import VGG16, to_nchw
from moodcast.labels import FER2013_CLASSES
from moodcast.vision.preprocess import prepare_batch

N_CLASSES = len(FER2013_CLASSES)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m edge_model.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="fer2013.npz, or fer2013.csv (with --ferplus for FER+ votes)")
    p.add_argument("--ferplus", help="fer2013new.csv with the FER+ votes, when --data is fer2013.csv")
    p.add_argument("--out", required=True, type=Path, help="run directory (checkpoints, metrics.csv, config.json)")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of every layer (1.0 = VGG16)")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02, help="peak learning rate (SGD + Nesterov, cosine decay)")
    p.add_argument("--warmup", type=int, default=1, help="epochs of linear warm-up")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--fer2013-mix", type=float, default=0.25,
                   help="weight of the original FER2013 label in the target (the rest is the FER+ vote distribution)")
    p.add_argument("--class-weight-power", type=float, default=0.5,
                   help="loss weight of a class = (1/prior)^power, normalised; 0 = plain cross-entropy")
    p.add_argument("--fer2013-head", type=float, default=0.0,
                   help="loss weight of a second head trained on the original FER2013 label (0: one head)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    p.add_argument("--limit", type=int, default=0,
                   help="use only the first N training and validation faces (smoke tests)")
    p.add_argument("--init", type=Path,
                   help="start from these weights (an epoch_NNN.pt of an earlier run) with a fresh optimizer and "
                        "schedule: a warm restart that lengthens training without redoing it")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop after this many epochs in this invocation (resume later with the same command)")
    return p.parse_args(argv)


def learning_rate(epoch: float, args: argparse.Namespace) -> float:
    """Linear warm-up, then cosine decay to zero; `epoch` is fractional (per batch)."""
    if epoch < args.warmup:
        return args.lr * (0.1 + 0.9 * epoch / args.warmup)
    progress = (epoch - args.warmup) / max(1, args.epochs - args.warmup)
    return 0.5 * args.lr * (1 + math.cos(math.pi * min(1.0, progress)))


def training_targets(split: dataset.Split, fer2013_mix: float) -> tuple[dataset.Split, np.ndarray]:
    """(faces, (N, 7) target distributions): FER+ votes mixed with the original label.

    Faces with no emotion votes (FER+ unknown / not a face) are dropped: their original label is
    the noisiest there is.
    """
    faces, votes = dataset.targets(split, "ferplus-votes")
    onehot = np.eye(N_CLASSES, dtype=np.float32)[faces.labels]
    return faces, ((1 - fer2013_mix) * votes + fer2013_mix * onehot).astype(np.float32)


def class_weights(targets: np.ndarray, power: float) -> np.ndarray:
    """(1/prior)^power, scaled so that the average face keeps weight 1."""
    prior = targets.mean(axis=0)
    w = (1.0 / np.maximum(prior, 1e-4)) ** power
    return (w / float((targets @ w).mean())).astype(np.float32)


@dataclass
class Objective:
    """What one batch is scored against: the FER+ targets for the first head and, in a joint network, the
    original FER2013 label for the second, each class re-weighted."""

    votes: np.ndarray  # (N, 7) target distributions
    vote_weights: torch.Tensor  # (7,)
    labels: np.ndarray  # (N,) original FER2013 labels
    label_weights: torch.Tensor  # (7,)
    label_head: float  # loss weight of the FER2013 head; 0 = a single head

    @property
    def outputs(self) -> int:
        return N_CLASSES * (2 if self.label_head else 1)

    def loss(self, logits: torch.Tensor, idx: np.ndarray, device: torch.device) -> torch.Tensor:
        y = torch.from_numpy(self.votes[idx]).to(device)
        per_face = -(y * F.log_softmax(logits[:, :N_CLASSES].float(), dim=1)).sum(dim=1) * (y @ self.vote_weights)
        loss = per_face.mean()
        if self.label_head:
            target = torch.from_numpy(self.labels[idx]).to(device)
            loss = loss + self.label_head * F.cross_entropy(logits[:, N_CLASSES:].float(), target,
                                                            weight=self.label_weights)
        return loss

    def hits(self, logits: torch.Tensor, idx: np.ndarray) -> int:
        """Training faces whose FER+ head agrees with the targets' top class."""
        return int((logits[:, :N_CLASSES].argmax(1).cpu().numpy() == self.votes[idx].argmax(1)).sum())


def objective(train: dataset.Split, votes: np.ndarray, args: argparse.Namespace,
              device: torch.device) -> Objective:
    onehot = np.eye(N_CLASSES, dtype=np.float32)[train.labels]
    return Objective(votes, torch.from_numpy(class_weights(votes, args.class_weight_power)).to(device),
                     train.labels, torch.from_numpy(class_weights(onehot, args.class_weight_power)).to(device),
                     args.fer2013_head)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    splits = dataset.load(args.data, args.ferplus)
    train, y_train = training_targets(splits["Training"], args.fer2013_mix)
    val = splits["PublicTest"]
    if args.limit:
        train, y_train = train.subset(slice(0, args.limit)), y_train[: args.limit]
        val = val.subset(slice(0, args.limit))
    prior = y_train.mean(axis=0)
    goal = objective(train, y_train, args, device)

    torch.manual_seed(args.seed)
    model = VGG16(goal.outputs, args.width).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                weight_decay=args.weight_decay)
    if args.init:
        state = torch.load(args.init, map_location=device)
        model.load_state_dict(heads.widen_state(state) if args.fer2013_head else state)
    start_epoch = _resume(model, optimizer, args.out, device)
    _write_config(args, model, device, len(train), len(val), prior)
    print(f"training {model_name(args.width)} on {device}: {_params(model):,} params, {len(train)} train / "
          f"{len(val)} val faces, epochs {start_epoch + 1}..{args.epochs}", flush=True)

    x_val = to_nchw(prepare_batch(val.images)).to(device)
    last = args.epochs if not args.stop_after else min(args.epochs, start_epoch + args.stop_after)
    for epoch in range(start_epoch, last):
        t0 = time.time()
        loss, acc = train_epoch(model, optimizer, train.images, goal, epoch, args, device)
        logits = predict_logits(model, x_val)
        np.save(args.out / f"val_logits_{epoch + 1:03d}.npy", logits)
        torch.save(model.state_dict(), args.out / f"epoch_{epoch + 1:03d}.pt")
        _checkpoint(model, optimizer, args.out, epoch + 1)
        _log_epoch(args.out, epoch + 1, learning_rate(epoch + 1, args), loss, acc, val, logits, time.time() - t0)
    return 0


def train_epoch(model, optimizer, images, goal: Objective, epoch, args, device) -> tuple[float, float]:
    """One pass; batch order, augmentation and dropout depend only on (seed, epoch)."""
    model.train()
    torch.manual_seed(args.seed * 100_003 + epoch)
    order = np.random.default_rng((args.seed, epoch)).permutation(len(images))
    steps = len(images) // args.batch
    total_loss, correct, seen = 0.0, 0, 0
    for i in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(epoch + i / steps, args)
        idx = order[i * args.batch:(i + 1) * args.batch]
        x = to_nchw(augment_batch(images[idx], np.random.default_rng((args.seed, epoch, i))))
        x = x.to(device).to(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(x)
        loss = goal.loss(logits, idx, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(idx)
        correct += goal.hits(logits, idx)
        seen += len(idx)
        if i % 50 == 0:
            print(f"  epoch {epoch + 1} step {i}/{steps} loss {total_loss / seen:.4f}", flush=True)
    return total_loss / seen, correct / seen


@torch.no_grad()
def predict_logits(model, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    """Float32 logits in eval mode (BatchNorm running stats, no dropout)."""
    model.eval()
    out = [model(x[i:i + batch].contiguous(memory_format=torch.channels_last)).float() for i in range(0, len(x), batch)]
    return torch.cat(out).cpu().numpy()


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _checkpoint(model, optimizer, out: Path, epoch: int) -> None:
    """Written to a temporary name and renamed, so a kill mid-write never corrupts the resume point."""
    tmp = out / "last.pt.tmp"
    torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp)
    os.replace(tmp, out / "last.pt")


def _resume(model, optimizer, out: Path, device) -> int:
    """Continue after the last finished epoch, optimizer state included."""
    path = out / "last.pt"
    if not path.exists():
        return 0
    state = torch.load(path, map_location=device)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    print(f"resuming after epoch {state['epoch']}", flush=True)
    return int(state["epoch"])


def _write_config(args, model, device, n_train: int, n_val: int, prior: np.ndarray) -> None:
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(model=model_name(args.width), params=_params(model), train_faces=n_train, val_faces=n_val,
                  classes=list(FER2013_CLASSES), train_prior=[round(float(p), 6) for p in prior],
                  framework=f"torch {torch.__version__}", hardware=_hardware(device))
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _hardware(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
            f"{torch.get_num_threads()} threads, bf16 autocast")


def _log_epoch(out: Path, epoch: int, lr: float, loss: float, acc: float, val: dataset.Split, logits: np.ndarray,
               seconds: float) -> None:
    """Each label family scored by its own head (a single head is scored on both)."""
    keep, fer = dataset.ferplus_eval_rows(val)
    pred_plus, pred_orig = logits[:, :N_CLASSES].argmax(axis=1), logits[:, -N_CLASSES:].argmax(axis=1)
    row = {"epoch": epoch, "lr": round(lr, 6), "loss": round(loss, 4), "train_acc": round(acc, 4),
           "val_ferplus_acc": round(float((pred_plus[keep] == fer[keep]).mean()), 4),
           "val_fer2013_acc": round(float((pred_orig == val.labels).mean()), 4), "seconds": round(seconds, 1)}
    path = out / "metrics.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(f"epoch {epoch}: PublicTest FER+ {row['val_ferplus_acc']:.4f}, FER2013 {row['val_fer2013_acc']:.4f}, "
          f"loss {loss:.4f}, {seconds:.0f}s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
