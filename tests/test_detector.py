"""BlazeFace: anchors, decoding and NMS against hand-worked numbers, then the bundled models on real faces.

The real-face references are independent of the code under test: the astronaut's face box and
eye positions were read off the image by hand, and on ../shared's photos BlazeFace's boxes must
agree with OpenCV's Haar cascade wherever the cascade finds a face.
"""

import cv2
import numpy as np
import pytest

from bench.scenes import iou, letterbox
from moodcast.config import DetectorConfig
from moodcast.vision import blazeface
from moodcast.vision.detector import (
    MEMORY_FRAMES,
    BlazeFaceDetector,
    DetectorError,
    Face,
    HaarDetector,
    crop_face,
    make_detector,
)
from tests.media import FRAMES, SAMPLES, labelled_frames, needs_frames

# 01_astronaut.png letterboxed to 640x480 (scale 0.94, 80 px bars left and right): the face from
# hairline to chin and cheek to cheek, and the pupils, read off a 4x zoom with a 10 px grid.
ASTRONAUT_BOX = (247, 68, 90, 97)
ASTRONAUT_EYES = ((271, 95), (313, 97))


def letterboxed(path):
    return letterbox(cv2.imread(str(path)))


@pytest.fixture(scope="module", params=["full", "short"])
def detector(request):
    return BlazeFaceDetector(DetectorConfig(variant=request.param, min_face_px=12))


def test_anchor_layouts_match_the_models():
    short = blazeface.ssd_anchors(128, (8, 16, 16, 16), 2)
    full = blazeface.ssd_anchors(192, (4,), 1)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # short range: 16x16 cells x 2 at stride 8, then 8x8 cells x 6 (three stride-16 layers x 2)
    assert np.allclose(short[0], short[1]) and np.allclose(short[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(short[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(short[512:518], [0.5 / 8, 0.5 / 8]) and np.allclose(short[518], [1.5 / 8, 0.5 / 8])
    assert np.allclose(full[1], [1.5 / 48, 0.5 / 48]) and np.allclose(full[48], [0.5 / 48, 1.5 / 48])


def test_decode_places_box_and_keypoints_relative_to_the_anchor():
    anchors = np.array([[0.25, 0.5], [0.75, 0.5]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    raw[1, :4] = [12.8, -6.4, 32.0, 64.0]  # centre offset (+0.1, -0.05), size (0.25, 0.5) of a 128 input
    raw[1, 4:6] = [-12.8, 0.0]  # first keypoint 0.1 left of the anchor
    d = blazeface.decode(raw, np.array([-3.0, 2.0]), anchors, 128, min_score=0.5)
    assert d.scores.tolist() == pytest.approx([1 / (1 + np.exp(-2.0))])  # the -3 logit (0.05) is dropped
    assert d.boxes[0] == pytest.approx([0.85 - 0.125, 0.45 - 0.25, 0.85 + 0.125, 0.45 + 0.25])
    assert d.keypoints[0, 0] == pytest.approx([0.65, 0.5]) and d.keypoints[0, 1] == pytest.approx([0.75, 0.5])


def test_decode_thresholds_the_logits_exactly_as_the_sigmoid_would():
    rng = np.random.default_rng(0)
    anchors = blazeface.ssd_anchors(192, (4,), 1)
    raw_boxes = rng.normal(0, 5, (2304, 16)).astype(np.float32)
    raw_boxes[:, 2:4] = np.abs(raw_boxes[:, 2:4]) + 1  # positive sizes: every anchor is a valid box
    logits = rng.normal(-4, 4, 2304).astype(np.float32)
    logits[:3] = [np.log(0.6 / 0.4), 200.0, -200.0]  # a score of 0.6 exactly, and logits beyond the clip
    for min_score in (0.0, 0.3, 0.5, 0.6, 0.95):
        sigmoid = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))
        expected = np.flatnonzero(sigmoid >= min_score)
        d = blazeface.decode(raw_boxes, logits, anchors, 192, min_score)
        assert d.scores == pytest.approx(sigmoid[expected]), min_score
        centres = raw_boxes[expected, :2] / 192 + anchors[expected]
        assert (d.boxes[:, :2] + d.boxes[:, 2:]) / 2 == pytest.approx(centres, abs=1e-6)


def test_weighted_nms_averages_a_cluster_and_keeps_a_separate_face():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]], np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    keypoints[1] = 1.0
    merged = blazeface.weighted_nms(blazeface.Detections(boxes, keypoints, np.array([0.9, 0.6, 0.7])))
    assert merged.scores.tolist() == pytest.approx([0.9, 0.7])
    assert merged.boxes[0] == pytest.approx([0.108, 0.1, 0.308, 0.3])  # (0.9 * 0.10 + 0.6 * 0.12) / 1.5
    assert merged.keypoints[0, 0, 0] == pytest.approx(0.4)
    assert merged.boxes[1] == pytest.approx(boxes[2])


def test_letterbox_maps_model_coordinates_back_to_the_frame():
    lb = blazeface.Letterbox(480, 640, 192)
    assert lb.tensor(np.zeros((480, 640, 3), np.uint8)).shape == (1, 192, 192, 3)
    corners = lb.to_frame(np.array([[0.0, 0.125], [1.0, 0.875]], np.float32))
    assert corners == pytest.approx(np.array([[0, 0], [640, 480]]))  # the bars are 80 px above and below


def test_shrink_averages_like_inter_area_at_a_fraction_of_the_cost():
    frame = letterboxed(SAMPLES / "01_astronaut.png")
    for size, frame_ in (((192, 144), frame), ((128, 96), frame), ((192, 108), cv2.resize(frame, (1280, 720)))):
        shrunk = blazeface.shrink(frame_, *size)
        assert shrunk.shape[1::-1] == size
        reference = cv2.resize(frame_, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        assert np.abs(shrunk - reference).mean() < 1.5, size  # about one grey level on average (seen 0.95, 1.2)
    odd = np.zeros((479, 641, 3), np.uint8)  # no whole factor divides both sides: plain INTER_AREA
    assert blazeface.shrink(odd, 192, 143).shape == (143, 192, 3)


def test_astronaut_box_and_eyes(detector):
    faces = detector.detect(letterboxed(SAMPLES / "01_astronaut.png"))
    assert len(faces) == 1 and faces[0].score > 0.8
    face = faces[0]
    assert iou((face.x, face.y, face.w, face.h), ASTRONAUT_BOX) > 0.6, face
    # the short-range model sees this face 18 px wide (the full-range one 27 px): coarser eye points
    tolerance = {"full": 8, "short": 15}[detector.cfg.variant]
    for found, truth in zip(face.eyes, ASTRONAUT_EYES, strict=False):  # image-left eye first
        assert np.hypot(found[0] - truth[0], found[1] - truth[1]) < tolerance, face.eyes


def test_gray_frames_and_an_empty_room(detector):
    assert len(detector.detect(cv2.cvtColor(letterboxed(SAMPLES / "01_astronaut.png"), cv2.COLOR_BGR2GRAY))) == 1
    assert detector.detect(letterboxed(SAMPLES / "02_coffee.png")) == []


def test_upright_crop_levels_the_eyes():
    image = letterboxed(SAMPLES / "01_astronaut.png")
    face = make_detector(DetectorConfig()).detect(image)[0]
    centre = tuple(np.mean(face.eyes, axis=0))
    tilted = cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, 25, 1.0), (640, 480))
    found = make_detector(DetectorConfig()).detect(tilted)[0]
    (lx, ly), (rx, ry) = found.eyes
    assert np.degrees(np.arctan2(ry - ly, rx - lx)) == pytest.approx(-25 + np.degrees(np.arctan2(
        face.eyes[1][1] - face.eyes[0][1], face.eyes[1][0] - face.eyes[0][0])), abs=6)
    straight, levelled = crop_face(image, face), crop_face(tilted, found)
    assert straight.ndim == 2 and abs(straight.shape[0] - levelled.shape[0]) <= 0.1 * straight.shape[0]
    same = cv2.resize(levelled, straight.shape[::-1])
    assert np.corrcoef(same.ravel(), straight.ravel())[0, 1] > 0.8  # the same upright face again


def test_box_crop_without_eyes_is_the_square_box():
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    assert crop_face(gray, Face(10, 20, 30, 40)).shape == (40, 40)


def test_haar_still_available_as_the_fallback():
    faces = make_detector(DetectorConfig(kind="haar")).detect(letterboxed(SAMPLES / "01_astronaut.png"))
    assert isinstance(make_detector(DetectorConfig(kind="haar")), HaarDetector) and len(faces) == 1


@needs_frames
def test_real_photos_agree_with_haar_and_every_labelled_face_is_found():
    blaze = make_detector(DetectorConfig(track_frames=0))  # unrelated photos: each one searched whole
    haar = make_detector(DetectorConfig(kind="haar", min_face_px=40))
    missed, disagree = [], []
    for path in sorted(p for p in FRAMES.iterdir() if p.suffix in (".jpg", ".png")):
        frame = letterboxed(path)
        found = [(f.x, f.y, f.w, f.h) for f in blaze.detect(frame)]
        for box in [(f.x, f.y, f.w, f.h) for f in haar.detect(frame)]:
            if found and max(iou(box, b) for b in found) < 0.4:
                disagree.append((path.name, box, found))
        if not found and path in dict(labelled_frames()):
            missed.append(path.name)
    assert not missed, missed
    # checked by eye: Haar's box on the shirt and tie below Alex's face, and a blurred face deep in the
    # Hamilton audience that BlazeFace leaves out
    assert {name for name, _, _ in disagree} <= {"happy_alex_lacamoire_2.jpg", "video_hamilton_clip_f244.png"}, disagree


def test_a_model_that_does_not_match_the_variant_is_refused():
    with pytest.raises(DetectorError, match="variant"):
        BlazeFaceDetector(DetectorConfig(variant="short", model=str(blazeface.model_path("full"))))


def test_a_held_face_is_followed_and_the_whole_frame_searched_every_track_frames_plus_one():
    frame = letterboxed(SAMPLES / "01_astronaut.png")
    detector = BlazeFaceDetector(DetectorConfig(track_frames=4))
    for _ in range(10):
        faces = detector.detect(frame)
        assert len(faces) == 1 and iou((faces[0].x, faces[0].y, faces[0].w, faces[0].h), ASTRONAUT_BOX) > 0.6
        for found, truth in zip(faces[0].eyes, ASTRONAUT_EYES, strict=True):
            assert np.hypot(found[0] - truth[0], found[1] - truth[1]) < 8, faces[0].eyes
    assert detector.searches == 2  # frames 1 and 6; the other eight followed the face


def test_a_moving_face_is_followed_and_a_lost_one_searched_for():
    frame = letterboxed(SAMPLES / "01_astronaut.png")
    detector = BlazeFaceDetector(DetectorConfig(track_frames=100))
    for step in range(6):  # 25 px to the right and 10 px down per frame: a walk across the room
        dx, dy = 25 * step, 10 * step
        moved = cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, dy]]), (640, 480))
        faces = detector.detect(moved)
        x, y, w, h = ASTRONAUT_BOX
        assert len(faces) == 1 and iou((faces[0].x, faces[0].y, faces[0].w, faces[0].h), (x + dx, y + dy, w, h)) > 0.5
    assert detector.searches == 1
    assert detector.detect(letterboxed(SAMPLES / "02_coffee.png")) == [] and detector.searches == 2  # lost
    assert len(detector.detect(frame)) == 1 and detector.searches == 3  # nothing followed: searched whole


def test_following_is_off_with_track_frames_0_and_with_the_short_range_model():
    frame = letterboxed(SAMPLES / "01_astronaut.png")
    for cfg in (DetectorConfig(track_frames=0), DetectorConfig(variant="short")):
        detector = BlazeFaceDetector(cfg)
        assert all(len(detector.detect(frame)) == 1 for _ in range(3)) and detector.searches == 3


def test_a_face_keeps_its_track_number_while_followed_searched_again_and_missed_for_a_moment():
    frame, empty = letterboxed(SAMPLES / "01_astronaut.png"), letterboxed(SAMPLES / "02_coffee.png")
    detector = BlazeFaceDetector(DetectorConfig(track_frames=4))
    numbers = {detector.detect(frame)[0].track for _ in range(10)}
    assert detector.searches == 2 and len(numbers) == 1  # two whole-frame searches, eight followed frames
    assert detector.detect(empty) == []
    assert detector.detect(frame)[0].track in numbers  # missed in one frame: the same face, where it was
    for _ in range(MEMORY_FRAMES + 1):
        detector.detect(empty)
    again = detector.detect(frame)[0].track
    assert again not in numbers  # gone for longer: whoever sits there now is a new face
    assert BlazeFaceDetector(DetectorConfig()).detect(frame)[0].track not in numbers | {again}  # never reused


def test_haar_faces_carry_track_numbers_too():
    frame = letterboxed(SAMPLES / "01_astronaut.png")
    detector = HaarDetector(DetectorConfig(kind="haar"))
    assert len({detector.detect(frame)[0].track for _ in range(3)}) == 1
