"""The benchmark's own logic on tiny inputs: scene building, statistics, reaction analysis, budgets, report."""

import re

import numpy as np
import pytest

from bench import budgets, report, scenes
from bench.reaction import analyse
from bench.stats import slope, summary


@pytest.fixture
def tiny_fer(tmp_path):
    rng = np.random.default_rng(0)
    n = 6
    path = tmp_path / "fer.npz"
    votes = np.zeros((n, 10), np.uint8)
    votes[:, 1] = 8  # FER+ majority: happiness
    np.savez(path, images=rng.integers(0, 255, (n, 48, 48), dtype=np.uint8), labels=np.full(n, 3, np.int8),
             usage=np.array(["Training"] * 2 + ["PrivateTest"] * 4), ferplus_votes=votes)
    return scenes.Fer2013(path)


def test_fer_scene_places_the_face_inside_a_full_frame(tiny_fer):
    assert len(tiny_fer) == 4 and tiny_fer.labels[0] == "happy" and tiny_fer.ferplus[0] == "happy"
    s = scenes.fer_scene(tiny_fer, 1, seed=3)
    x, y, w, h = s.box
    assert s.image.shape == (scenes.HEIGHT, scenes.WIDTH, 3) and s.image.dtype == np.uint8
    assert scenes.FACE_PX[0] <= w == h <= scenes.FACE_PX[1]
    assert 0 <= x and x + w <= scenes.WIDTH and 0 <= y and y + h <= scenes.HEIGHT
    assert np.array_equal(s.image, scenes.fer_scene(tiny_fer, 1, seed=3).image)  # deterministic
    assert list(tiny_fer.clear("happy")) == [0, 1, 2, 3] and len(tiny_fer.clear("sad")) == 0


def test_feather_fades_only_at_the_edges():
    a = scenes._feather(100)
    assert a[50, 50] == 1.0 and a[0, 50] == 0.0 and 0 < a[3, 50] < 1


def test_letterbox_and_iou():
    out = scenes.letterbox(np.full((100, 400, 3), 200, np.uint8))
    assert out.shape == (480, 640, 3) and out[0, 0, 0] == 0 and out[240, 320, 0] == 200
    assert scenes.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert scenes.iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert scenes.iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_summary_and_slope():
    s = summary(range(1, 101))
    assert s["n"] == 100 and s["p50"] == 50.5 and s["max"] == 100 and s["p95"] == pytest.approx(95.05)
    assert summary([]) == {"n": 0}
    assert slope([0, 1, 2, 3], [5, 7, 9, 11]) == pytest.approx(2.0)
    assert slope([1], [1]) == 0.0


class FakeRecorder:
    def __init__(self, changes, found):
        self._events = {"mood_changed": changes, "face_found": found}

    def events(self, kind):
        return self._events.get(kind, [])


def test_reaction_analysis_counts_reactions_flicker_and_misses():
    t0, s = 100.0, 10.0
    changes = [(100.9, {"to": "neutral"}),                       # stretch 0: first face
               (111.0, {"to": "uncertain"}), (111.2, {"to": "happy"}),  # stretch 1: via uncertain
               (115.0, {"to": "neutral"}),                       # stretch 1: a false change
               (120.8, {"to": "sad"})]                           # stretch 2: wrong mood, never surprise
    r = analyse(["neutral", "happy", "surprise"], t0, s, FakeRecorder(changes, [(100.05, {})]))
    assert r["first_face_s"] == pytest.approx(0.9)
    assert r["reaction_samples_s"] == [pytest.approx(1.2)]
    assert r["transitional_changes"] == 1 and r["false_changes_steady"] == 1
    assert r["missed"] == [{"stretch": 2, "expected": "surprise", "got": ["sad"]}]
    assert r["anchor_check_ms"] == pytest.approx(50.0)


def fake_results():
    stage = {s: summary([1.0, 2.0]) for s in ("capture", "detect", "preprocess", "classify", "track", "publish")}
    cfg = {"stages_ms": stage, "frame_ms": summary([6.0, 12.0]), "one_face_detect_classify_ms": summary([10.0, 20.0]),
           "fps_unpaced": 100.0, "model_load_ms": 5.0, "first_invoke_ms": 1.0, "model": "m", "threads": 2}
    soak = {"ready_s": 1.0, "rss_mb_at_ready": 100, "rss_mb_after_warmup": 110, "rss_mb_end": 110, "rss_mb_max": 111,
            "rss_slope_mb_per_h": 0.1, "rss_fit_growth_mb": 0.0, "fit_window_s": 60, "cpu_percent": 12.0,
            "samples": [[0, 100, 0], [30, 110, 3], [60, 110, 6]], "daemon_stats": []}
    return {"date": "2026-01-01", "machine": "test", "load_start": 0, "load_end": 0, "note": "", "skipped": [],
            "elapsed_s": 1.0, "stages": {"int8_t2": cfg, "float32_t2": cfg},
            "reaction": {"switches": 2, "switch_s": 10, "moods": ["happy", "neutral"], "faces": "test",
                         "reaction_s": summary([1.0, 1.4]), "reaction_samples_s": [1.0, 1.4], "false_changes_steady": 0,
                         "transitional_changes": 0, "missed": [], "first_face_s": 1.0, "anchor_check_ms": 40.0},
            "footprint": {"face": soak, "no_face": dict(soak, cpu_percent=8.0), "ready_s": [1.0, 2.0],
                          "ready_s_side_by_side": [1.0], "soak_s": 60, "sample_s": 10}}


def test_budgets_and_report(tmp_path):
    results = fake_results()
    checked = budgets.check(results)
    assert not checked["detect+classify p95 (int8, 2 thr), ms"]["ok"]  # p95 of [10, 20] is 19.5 > 8
    assert checked["reaction p95, s"]["ok"] and checked["CPU no face < face, %"]["ok"]
    assert checked["start to READY (worst of one-at-a-time), s"]["value"] == 2.0
    results["budgets"] = checked
    results["pi4_estimate"] = budgets.pi4_estimate(results, 176e6)
    assert results["pi4_estimate"]["classify"]["fp32_4t_ms"] == pytest.approx(176e6 / (569e6 / 0.075) * 1e3, abs=0.1)
    text = report.table(results)
    assert "MISSED" in text and "reaction time" in text and "ESTIMATE" in text
    report.chart(results, tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_detector_sweep_counts_hits_by_face_size_and_false_faces():
    from types import SimpleNamespace as Box

    from bench import detector_sweep as ds
    fer = scenes.Scene(np.zeros((4, 4, 3), np.uint8), (10, 10, 70, 70), "happy", "fer2013:1")
    empty = scenes.Scene(fer.image, None, None, "background")
    tally = {"fer": 0, "photos": 0, "false": 0, **{b: 0 for b in ds.BUCKETS}}
    ds._count(tally, fer, [Box(x=12, y=12, w=66, h=66), Box(x=300, y=300, w=50, h=50)])
    ds._count(tally, empty, [Box(x=0, y=0, w=40, h=40)])
    assert tally["fer"] == 1 and tally[(60, 90)] == 1 and tally["false"] == 2


def test_detection_budgets_recall_false_faces_against_haar_photos_and_idle_cpu():
    results = fake_results()
    sweep = {"fer_found_pct": 96.0, "real_found_pct": 90.0, "false_faces": 2}
    results["detector_sweep"] = {"settings": {"default": sweep, "haar min_face_px=60": dict(sweep, false_faces=1)}}
    results["accuracy"] = {"photos": {"n": 12, "faces_found": 12, "correct": 9}}
    checked = budgets.check(results)
    assert checked["recall, FER faces 40-200 px, %"]["ok"] and not checked["recall, real faces 40-200 px, %"]["ok"]
    assert not checked["false faces (sweep frames), vs Haar's"]["ok"]  # 2 > Haar's 1
    assert checked["labelled real photos with their face found"] == {"value": 12, "budget": ">= 12", "ok": True}
    assert not checked["CPU, nobody in view, % of a core"]["ok"]  # the fake idle daemon used 8 %


def test_real_scene_puts_the_reference_face_where_its_box_says():
    import cv2

    from bench.real_scenes import real_scene
    photo = scenes.Scene(scenes.letterbox(cv2.imread(str(scenes.SAMPLES / "01_astronaut.png"))), None, "happy", "x")
    ref = (247, 68, 90, 97)  # the astronaut's face, read off the image (tests/test_detector.py)
    scene = real_scene(photo, ref, seed=4)
    x, y, w, h = scene.box
    assert scenes.FACE_PX[0] <= max(w, h) <= scenes.FACE_PX[1] + 1 and scene.source == "real:x"
    expected = cv2.resize(photo.image[68:68 + 97, 247:247 + 90], (w, h))
    placed = scene.image[y:y + h, x:x + w]
    assert np.abs(placed.astype(int) - expected.astype(int)).mean() < 12


def test_sweep_counts_real_scene_hits_and_leaves_other_real_faces_alone():
    from types import SimpleNamespace as Box

    from bench import detector_sweep as ds
    real = scenes.Scene(np.zeros((4, 4, 3), np.uint8), (10, 10, 45, 45), None, "real:frames/x.jpg")
    tally = {"real": 0, "false": 0, **{("real", b): 0 for b in ds.BUCKETS}}
    ds._count(tally, real, [Box(x=12, y=12, w=44, h=44), Box(x=300, y=300, w=50, h=50)])
    assert tally["real"] == 1 and tally[("real", (40, 60))] == 1 and tally["false"] == 0


def test_fer_comparison_budget_and_report_lines():
    from bench import fer_compare

    results = fake_results()
    results["fer_compare"] = {"fer_version": "25.10.3", "fer_settings": "defaults", "frames": 18, "rounds": 3,
                              "ms": {"moodcast": summary([8.0, 9.0]), "fer": summary([30.0, 34.0])},
                              "speedup_p50": 3.76, "speedup_p95": 3.78,
                              "frames_with_a_face": {"moodcast": 18, "fer": 16}}
    checked = budgets.check(results)
    assert checked["whole frame vs fer package, p95 speed-up, x"] == {"value": 3.78, "budget": ">= 4.0", "ok": False}
    results.update(budgets=checked)
    assert "3.76x / 3.78x faster" in report.table(results)
    skipped = {"skipped": "the `fer` package is not importable here"}
    assert "not importable" in "\n".join(fer_compare.table_lines(skipped))
    assert "whole frame vs fer package, p95 speed-up, x" not in budgets.check(dict(results, fer_compare=skipped))


def test_fer_comparison_runs_both_pipelines_on_the_same_frames_or_says_why_not():
    import cv2

    from bench import fer_compare
    from moodcast.config import DetectorConfig
    from moodcast.vision.analyzer import Analyzer
    from moodcast.vision.classifier import EmotionClassifier, bundled_model
    from moodcast.vision.detector import make_detector

    analyzer = Analyzer(make_detector(DetectorConfig()), EmotionClassifier(bundled_model(), 2))
    frame = scenes.Scene(scenes.letterbox(cv2.imread(str(scenes.SAMPLES / "01_astronaut.png"))), None, "happy", "s")
    result = fer_compare.compare(analyzer, [frame], rounds=2)
    if isinstance(fer_compare.load_fer(), str):  # fer is optional: absent, the part names the reason
        assert "fer" in result["skipped"]
        return
    assert result["ms"]["moodcast"]["n"] == result["ms"]["fer"]["n"] == 2
    assert result["frames_with_a_face"]["moodcast"] == 1
    ms = result["ms"]
    assert result["speedup_p95"] == pytest.approx(ms["fer"]["p95"] / ms["moodcast"]["p95"], abs=0.01)


def test_mcnemar_exact_p_on_worked_examples():
    from bench.crops import mcnemar_p

    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0  # no discordant faces, or an even split
    assert mcnemar_p(10, 0) == pytest.approx(2 / 2 ** 10)  # all ten one way: both tails, one outcome each
    assert mcnemar_p(1, 6) == mcnemar_p(6, 1) == pytest.approx(2 * (1 + 7) / 2 ** 7)  # 0.125


def test_classify_latency_back_to_back_and_paced():
    from bench.latency import classify_ms
    from moodcast.vision.classifier import bundled_model
    for gap_s in (0.0, 0.01):
        ms = classify_ms(bundled_model(), threads=1, gap_s=gap_s, n=3)
        assert ms["n"] == 3 and 0 < ms["p50"] <= ms["max"]


# FER+ votes (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF) and what the
# model card's protocol (edge_model.dataset.ferplus_eval_rows, as `make eval` scores) makes of them
PROTOCOL_ROWS = [
    ([0, 8, 0, 0, 0, 0, 0, 0, 2, 0], "happy"),
    ([4, 0, 0, 4, 0, 0, 2, 0, 0, 0], None),        # no majority: not scored (the most votes would say neutral)
    ([1, 0, 0, 0, 0, 0, 0, 7, 2, 0], "contempt"),  # kept and always a miss
    ([3, 1, 1, 0, 0, 0, 0, 0, 0, 5], None),        # not a face
    ([3, 2, 1, 0, 0, 0, 0, 0, 1, 0], "neutral"),   # single votes are dropped: 3 of 5
    ([0, 0, 0, 3, 1, 1, 1, 1, 1, 2], "sad"),       # singles dropped: sadness 3 of 5 (not a face 2)
]


@pytest.fixture
def protocol_fer(tmp_path):
    votes = np.array([v for v, _ in PROTOCOL_ROWS], np.uint8)
    path = tmp_path / "fer.npz"
    np.savez(path, images=np.arange(len(votes), dtype=np.uint8)[:, None, None] * np.ones((1, 48, 48), np.uint8),
             labels=np.full(len(votes), 3, np.int8), usage=np.array(["PrivateTest"] * len(votes)), ferplus_votes=votes)
    return scenes.Fer2013(path)


class ByPixel:
    """A classifier that answers, for each test face (told apart by its pixel value), a fixed mood."""

    labels = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

    def __init__(self, answers: list[str]):
        self.answers = answers

    def classify(self, image):
        probs = np.zeros(len(self.labels), np.float32)
        probs[self.labels.index(self.answers[int(image[0, 0])])] = 1.0
        return probs


def test_fer_plus_follows_the_model_cards_protocol(protocol_fer):
    assert protocol_fer.ferplus_majority == ["happy", None, "contempt", None, "neutral", "sad"]


def test_classifier_alone_scores_fer_plus_only_on_the_faces_the_protocol_keeps(protocol_fer):
    from bench.accuracy import classifier_alone

    answers = ["happy", "neutral", "happy", "neutral", "neutral", "angry"]  # right on rows 0 and 4 of 4 kept
    result = classifier_alone(ByPixel(answers), protocol_fer, range(len(protocol_fer)))
    assert result == {"n": 6, "accuracy": 33.3, "n_ferplus": 4, "accuracy_ferplus": 50.0}
    text = "\n".join(report._accuracy_lines({"all_crops": result}))
    assert "all 6 PrivateTest crops: 33.3 % on FER2013 labels, 50.0 % on FER+ majorities (the model card's " \
           "protocol, N = 4)" in text


def test_the_model_line_says_only_what_the_card_says(tmp_path, capsys):
    from bench.__main__ import model_note, progress
    from moodcast.vision.classifier import bundled_model

    note = model_note(bundled_model())
    assert "?" not in note and "trained on the FER+ vote distribution" in note and "sha256 " in note
    bare = tmp_path / "bare-int8.tflite"
    bare.with_suffix(".json").write_text('{"labels": ["happy", "sad"]}')
    assert model_note(bare) == "model: bare-int8.tflite"
    progress("stage latency: 3 frames")
    assert re.fullmatch(r"bench \[ *\d+ s\] stage latency: 3 frames\n", capsys.readouterr().err)
