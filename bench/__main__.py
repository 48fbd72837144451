"""python -m bench --data ../shared/data/fer2013.npz --out out/bench [--quick]

Order: the in-process parts first, alone (stage latency, then accuracy in the loop), then three
real daemons at once against one broker: the face soak (RSS, CPU with a face), an empty room
(CPU with no face) and the expression-switch replay (reaction time). Running the daemons side
by side is what makes the whole benchmark fit in 10 minutes; each one's CPU is counted from its
own /proc entry, so they do not blur each other's figures, only add a little load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import cv2

from bench import accuracy, budgets, detector_sweep, fer_compare, reaction, report, stages
from bench.daemons import start_broker
from bench.footprint import WARMUP_S, Watched, cold_starts
from bench.real_scenes import real_scenes
from bench.scenes import ROOT, SAMPLES, Fer2013, Scene, empty_scene, encode_jpeg, fer_scene, letterbox, photo_scenes
from moodcast.config import DetectorConfig
from moodcast.vision.classifier import bundled_model, load_card

STARTED = time.monotonic()


def progress(text: str) -> None:
    """One line as each stage starts: the whole run takes minutes and would otherwise be silent."""
    print(f"bench [{time.monotonic() - STARTED:4.0f} s] {text}", file=sys.stderr, flush=True)


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="fer2013.npz (without it: bundled samples and real frames only)")
    p.add_argument("--frames", type=Path, default=ROOT.parent / "shared" / "data" / "frames",
                   help="directory of real photos with labels.csv (default: %(default)s, used when present)")
    p.add_argument("--out", type=Path, default=Path("out/bench"))
    p.add_argument("--model", type=Path, default=None, help="int8 .tflite (default: the bundled one)")
    p.add_argument("--float-model", type=Path, default=None,
                   help="float32 twin (default: *-float32.tflite beside the int8 model, when present)")
    p.add_argument("--detector", action="append", default=[], metavar="KEY=VALUE",
                   help="override a [detector] setting everywhere (in-process and daemons), e.g. min_face_px=80")
    p.add_argument("--quick", action="store_true", help="short soak and fewer frames (about 3 minutes)")
    p.add_argument("--soak-s", type=float, help="real-time soak length (default 240, quick 90)")
    p.add_argument("--sample-s", type=float, default=10.0, help="RSS/CPU sampling interval")
    p.add_argument("--switches", type=int, help="expression switches in the reaction replay (default 20, quick 8)")
    p.add_argument("--switch-s", type=float, help="seconds per expression (default 10, quick 6)")
    p.add_argument("--timing-frames", type=int,
                   help="FER scenes per configuration for stage latency (default 200, quick 60)")
    p.add_argument("--faces", type=int,
                   help="PrivateTest faces for accuracy in the loop (default 1000, quick 200, 0 = all)")
    p.add_argument("--fast-frames", type=int,
                   help="frames of the as-fast-as-possible soak (default 6000 = 20 min at 5 fps, quick 1500, 0 = skip)")
    p.add_argument("--sweep-frames", type=int,
                   help="FER scenes for the detector settings sweep (default 100, quick 40)")
    p.add_argument("--hold-s", type=float, default=3.0, help="seconds each face is held in the accuracy replay")
    a = p.parse_args(argv)
    for name, full, quick in (("soak_s", 240.0, 90.0), ("switches", 20, 8), ("switch_s", 10.0, 6.0),
                              ("timing_frames", 200, 60), ("faces", 1000, 200), ("sweep_frames", 100, 40),
                              ("fast_frames", 6000, 1500)):
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    a.detector = detector_overrides(a.detector)
    return a


def detector_overrides(pairs: list[str]) -> dict:
    """["min_face_px=80"] -> {"min_face_px": 80}, typed from DetectorConfig's annotations."""
    fields = {f.name: f.type for f in dataclasses.fields(DetectorConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in fields or not value:
            raise SystemExit(f"--detector {pair!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
        out[key] = {"int": int, "float": float}.get(fields[key], str)(value)
    return out  # out-of-range values: the daemons refuse them at start-up, as config.toml would


def main(argv=None) -> int:
    args = parse(argv)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="moodcast-bench-"))
    results = {"date": date.today().isoformat(), "load_start": round(os.getloadavg()[0], 2), "skipped": [],
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                          f"OpenCV {cv2.__version__}",
               "note": "timings are wall-clock on this machine as it was: see load avg",
               "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
               "detector_overrides": args.detector}
    progress("starting a Mosquitto broker for the daemons")
    broker, results["broker"], stop_broker = start_broker(workdir / "broker")
    try:
        fer, photos = load_inputs(args, results)
        progress(f"inputs: {f'{len(fer)} FER2013 PrivateTest faces' if fer else 'no FER2013'}, "
                 f"{len(photos)} real photos")
        model, float_model, macs = models(args, results)
        configs = in_process(args, results, fer, photos, model, float_model, broker)
        progress("choosing the faces of the reaction replay")
        picks = reaction.pick_faces(configs[1].analyzer, fer, photos)
        progress(f"as-fast-as-possible soak: {args.fast_frames} frames in a child process")
        fast = fast_soak(args, workdir)
        daemons(args, results, workdir, fer, photos, picks, broker)
        results["footprint"]["fast_soak"] = fast
        results["budgets"] = budgets.check(results)
        results["pi4_estimate"] = budgets.pi4_estimate(results, macs)
    finally:
        stop_broker()
        shutil.rmtree(workdir, ignore_errors=True)
    results["load_end"] = round(os.getloadavg()[0], 2)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    progress("writing the report")
    report.write_json(results, args.out / "bench.json")
    report.chart(results, args.out / "bench.png")
    print(report.table(results))
    print(f"\nwrote {args.out / 'bench.json'} and {args.out / 'bench.png'}")
    return 0


def load_inputs(args, results: dict) -> tuple[Fer2013 | None, list[Scene]]:
    fer = Fer2013(args.data) if args.data and args.data.is_file() else None
    if fer is None:
        results["skipped"].append(f"FER2013 ({args.data or 'no --data'}): no accuracy in the loop, "
                                  "scenes from the bundled samples and real frames only")
    photos = photo_scenes(args.frames)
    if not photos:
        results["skipped"].append(f"real frames ({args.frames} absent)")
    return fer, photos


def models(args, results: dict) -> tuple[Path, Path | None, float | None]:
    model = args.model or bundled_model()
    float_model = args.float_model or model.with_name(model.name.replace("int8", "float32"))
    if not float_model.is_file():
        results["skipped"].append(f"float32 model ({float_model} absent): no int8/float32 ratio")
        float_model = None
    macs = load_card(model).get("macs")
    results["models"] = {"int8": str(model), "float32": str(float_model) if float_model else None, "macs": macs}
    return model, float_model, macs


def timing_scenes(args, fer: Fer2013 | None, photos: list[Scene]) -> list[Scene]:
    if fer is not None:
        return [fer_scene(fer, int(i)) for i in accuracy.sample(len(fer), args.timing_frames, seed=2)] + photos
    samples = [Scene(letterbox(cv2.imread(str(p))), None, None, p.name) for p in sorted(SAMPLES.glob("*.png"))]
    base = samples + photos
    return (base * (args.timing_frames // len(base) + 1))[:max(args.timing_frames, len(base))]


def in_process(args, results, fer, photos, model, float_model, broker) -> list[stages.Config]:
    """Stage latency for every configuration, then accuracy with int8 on 2 threads (configs[1])."""
    wanted = [("int8_t1", model, 1), ("int8_t2", model, 2)]
    if float_model:
        wanted += [("float32_t1", float_model, 1), ("float32_t2", float_model, 2)]
    # the frames here are unrelated stills: each is searched whole (no face to follow from the last one),
    # so the latency is a new face's; the daemons below follow faces as the default config does
    detector = dataclasses.replace(DetectorConfig(), **{"track_frames": 0, **args.detector})
    configs = [stages.load_config(*w, detector) for w in wanted]
    frames = [(encode_jpeg(s.image), "real photos" if s.source.startswith("frames/") else "scenes")
              for s in timing_scenes(args, fer, photos)]
    progress(f"stage latency: {len(frames)} frames through {', '.join(c.name for c in configs)}")
    link = stages.connect_publisher(broker.host, broker.port)
    try:
        stages.run_stages(configs, frames, link)
    finally:
        link.stop()
    results["stages"] = {c.name: stages.report(c) for c in configs}
    # the comparison: the same real photos through both whole-frame pipelines (skips without `fer`)
    progress("the fer package on the same photos")
    results["fer_compare"] = fer_compare.compare(configs[1].analyzer, photos)
    if "skipped" in results["fer_compare"]:
        results["skipped"].append("vs fer: " + results["fer_compare"]["skipped"])
    scenes = [fer_scene(fer, int(i)) for i in accuracy.sample(len(fer), args.sweep_frames, seed=2)] if fer else []
    progress(f"detector settings sweep: {len(scenes)} FER scenes, {len(photos)} photos, 10 empty rooms")
    results["detector_sweep"] = detector_sweep.sweep(scenes, photos, [empty_scene(100 + i) for i in range(10)],
                                                     real_scenes(photos, args.sweep_frames))
    analyzer = configs[1].analyzer
    progress("accuracy: labelled photos" + (f", all {len(fer)} PrivateTest crops, {args.faces or len(fer)} faces "
                                            "in the loop" if fer is not None else ""))
    acc = {"photos": accuracy.photos(analyzer, photos), "note": model_note(model)}
    if fer is not None:
        acc["all_crops"] = accuracy.classifier_alone(analyzer.classifier, fer, range(len(fer)))
        acc["loop"] = accuracy.in_the_loop(analyzer, fer, accuracy.sample(len(fer), args.faces), args.hold_s)
    results["accuracy"] = acc
    return configs


def model_note(model: Path) -> str:
    """The model line of the report, from its card: only what the card says."""
    card = load_card(model)
    facts = [card.get("architecture"), card.get("targets") and f"trained on {card['targets']}",
             card.get("sha256") and f"sha256 {str(card['sha256'])[:12]}"]
    known = [fact for fact in facts if fact]
    return f"model: {model.name}" + (f" ({', '.join(known)})" if known else "")


def fast_soak(args, workdir: Path) -> dict:
    """`python -m bench.fastsoak` in a child process, so that the RSS it reads is a daemon's alone."""
    if args.fast_frames <= 0:
        return {"skipped": "--fast-frames 0"}
    out = workdir / "fastsoak.json"
    cmd = [sys.executable, "-m", "bench.fastsoak", "--frames", str(args.fast_frames), "--json", str(out),
           "--frames-dir", str(args.frames)]
    cmd += ["--data", str(args.data)] if args.data else []
    cmd += ["--model", str(args.model)] if args.model else []
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode or not out.is_file():
        return {"skipped": f"fastsoak failed ({done.returncode}): {done.stderr.strip()[-300:]}"}
    return json.loads(out.read_text())


def daemons(args, results, workdir, fer, photos, picks, broker) -> None:
    """The soak (face), the empty room and the reaction replay, side by side."""
    # real faces first: BlazeFace finds few pasted FER crops, and an unseen face is never classified
    face_scenes = real_scenes(photos, 24)
    if not face_scenes and fer is not None:
        face_scenes = [fer_scene(fer, int(i), seed=3) for i in accuracy.sample(len(fer), 24, seed=3)]
    elif not face_scenes:
        face_scenes = [s for s in photos if s.label] or [Scene(letterbox(cv2.imread(str(SAMPLES / "01_astronaut.png"))),
                                                               None, "happy", "01_astronaut.png")]
    extra = {"model": {"path": str(args.model.resolve())}} if args.model else {}  # else the daemon's default
    if args.detector:
        extra["detector"] = args.detector
    progress("daemon start-up: 3 cold starts, one at a time")
    starts = cold_starts(workdir, face_scenes, broker, extra)
    progress(f"three daemons side by side for {args.soak_s:g} s: face soak, empty room, reaction replay "
             f"({args.switches} switches of {args.switch_s:g} s)")
    face = Watched(workdir, "face", face_scenes, broker, extra)
    idle = Watched(workdir, "no_face", [empty_scene(seed) for seed in range(3)], broker, extra)
    outcome: dict = {}

    def replay() -> None:
        try:
            outcome.update(reaction.run(workdir, broker, *picks, args.switches, args.switch_s, extra))
        except Exception as e:  # noqa: BLE001 - the other parts still report
            outcome["skipped"] = f"failed: {e}"

    worker = threading.Thread(target=replay, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + max(args.soak_s, WARMUP_S + 2 * args.sample_s)
        while time.monotonic() < deadline:
            time.sleep(min(args.sample_s, max(0.0, deadline - time.monotonic())))
            face.sample()
            idle.sample()
        worker.join(timeout=args.switches * args.switch_s + 120)
    finally:
        face.stop()
        idle.stop()
    results["reaction"] = outcome or {"skipped": "the reaction replay did not finish"}
    side_by_side = [face.ready_s, idle.ready_s] + ([outcome["ready_s"]] if "ready_s" in outcome else [])
    results["footprint"] = {"face": face.report(), "no_face": idle.report(), "ready_s": starts,
                            "ready_s_side_by_side": [round(r, 3) for r in side_by_side],
                            "soak_s": args.soak_s, "sample_s": args.sample_s}


if __name__ == "__main__":
    sys.exit(main())
