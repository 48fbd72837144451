"""moodcast's whole-frame pipeline against the `fer` PyPI package's, on the same frames in the same run:
python -m bench.fer_compare [--rounds 3]

Both take a 640x480 BGR frame and return faces with emotion probabilities: moodcast's Analyzer
(default detector, int8 model on 2 threads) and `fer.FER()` with the package's defaults (OpenCV's
Haar cascade and its quantized mini-Xception run by TensorFlow Lite). Each frame goes through
both, alternating which goes first, so load that comes and goes hits both alike. Optional: `fer`
needs TensorFlow and pins what moodcast's venv must not take (opencv-contrib-python, moviepy<2),
so it is not a dependency; without it this part reports why it was skipped.

Installing it beside the dev venv without touching it (as the bench was run here):
  python3 -m venv ../fer-venv
  ../fer-venv/bin/pip install 'setuptools<81' fer --no-deps        # fer imports pkg_resources
  echo "import site; site.addsitedir('$PWD/.venv/lib/python3.11/site-packages')" \
      > ../fer-venv/lib/python3.11/site-packages/zz_moodcast_venv.pth
  ../fer-venv/bin/python -m bench.fer_compare          # or: ../fer-venv/bin/python -m bench ...
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.scenes import Scene
from bench.stats import summary


def load_fer():
    """fer.FER() with its defaults, or the reason it cannot be had (a string)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import fer
        from fer.fer import FER  # the package's __init__ holds only metadata
    except Exception as e:  # noqa: BLE001 - ImportError, or TensorFlow failing inside its import
        return f"the `fer` package is not importable here ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    try:
        return FER(), getattr(fer, "__version__", "?")
    except Exception as e:  # noqa: BLE001
        return f"fer.FER() failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})"


def compare(analyzer, frames: list[Scene], rounds: int = 3) -> dict:
    """Wall ms per frame of both pipelines (p50/p95), the p95 ratio, and frames where each found a face."""
    loaded = load_fer()
    if isinstance(loaded, str):
        return {"skipped": loaded}
    if not frames:
        return {"skipped": "no real photos (../shared/data/frames) to run on"}
    fer_detector, version = loaded
    ms: dict[str, list[float]] = {"moodcast": [], "fer": []}
    found = {"moodcast": 0, "fer": 0}
    runs = {"moodcast": lambda image: analyzer.analyse(image).faces, "fer": fer_detector.detect_emotions}
    for name in runs:  # warm-up: interpreter allocation and TensorFlow's first call are start-up costs
        runs[name](frames[0].image)
    for r in range(rounds):
        for i, scene in enumerate(frames):
            order = ["moodcast", "fer"] if (i + r) % 2 == 0 else ["fer", "moodcast"]
            for name in order:
                t0 = time.perf_counter()
                faces = runs[name](scene.image)
                ms[name].append((time.perf_counter() - t0) * 1e3)
                found[name] += bool(faces) and r == 0
    out = {"fer_version": version, "frames": len(frames), "rounds": rounds,
           "fer_settings": "FER() defaults: Haar cascade, quantized mini-Xception on TF Lite",
           "ms": {k: summary(v) for k, v in ms.items()}, "frames_with_a_face": found}
    out["speedup_p50"] = round(out["ms"]["fer"]["p50"] / out["ms"]["moodcast"]["p50"], 2)
    out["speedup_p95"] = round(out["ms"]["fer"]["p95"] / out["ms"]["moodcast"]["p95"], 2)
    return out


def table_lines(result: dict) -> list[str]:
    if "skipped" in result:
        return ["", f"vs the fer package: skipped ({result['skipped']})"]
    m, f, found = result["ms"]["moodcast"], result["ms"]["fer"], result["frames_with_a_face"]
    return ["", f"whole frame vs fer {result['fer_version']} ({result['fer_settings']}), {result['frames']} real "
                f"photos x {result['rounds']} rounds, same run: moodcast p50/p95 {m['p50']}/{m['p95']} ms, "
                f"fer {f['p50']}/{f['p95']} ms -> {result['speedup_p50']}x / {result['speedup_p95']}x faster; "
                f"photos with a face found: moodcast {found['moodcast']}, fer {found['fer']}"]


def main(argv=None) -> int:
    import json

    from bench.scenes import ROOT, photo_scenes
    from moodcast.config import DetectorConfig
    from moodcast.vision.analyzer import Analyzer
    from moodcast.vision.classifier import EmotionClassifier, bundled_model
    from moodcast.vision.detector import make_detector

    p = argparse.ArgumentParser(prog="python -m bench.fer_compare", description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=Path, default=ROOT.parent / "shared" / "data" / "frames")
    p.add_argument("--model", type=Path, default=None, help="int8 .tflite (default: the bundled one)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    detector = make_detector(DetectorConfig(track_frames=0))  # unrelated photos: each searched whole
    analyzer = Analyzer(detector, EmotionClassifier(a.model or bundled_model(), 2))
    result = compare(analyzer, photo_scenes(a.frames), a.rounds)
    print("\n".join(table_lines(result)))
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
