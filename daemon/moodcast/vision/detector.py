"""Face detection: BlazeFace (bundled, with eye points) by default; OpenCV's Haar cascade as the
fallback that needs no model file; YuNet (.onnx by path) optionally.

Every detector takes the frame as it comes (BGR, or grayscale) and returns boxes in frame pixels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from moodcast.config import DetectorConfig
from moodcast.errors import EX_CONFIG, MoodcastError
from moodcast.vision import blazeface
from moodcast.vision.classifier import ModelError, interpreter_class

# Where FER2013 puts the eyes in its crops, as fractions of the crop side: the medians of BlazeFace's
# eye points on the 385 of the first 600 Training faces it found (python -m bench.fer_framing).
FER_EYE_DISTANCE = 0.36
FER_EYE_CENTRE = (0.5, 0.40)


class DetectorError(MoodcastError):
    """The detector cannot be created (missing cascade or model file)."""

    exit_code = EX_CONFIG


@dataclass(frozen=True)
class Face:
    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None  # frame pixels, image-left eye first
    track: int = 0  # the same number while the detector follows this face from frame to frame (0: not yet given)

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def corners(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.w, self.y + self.h


# A face found by a whole-frame search is taken for one of the last frame's faces when their boxes
# overlap this much (BlazeFace's own follow step asks the same of the face it finds near the old one).
SAME_FACE_IOU = 0.3
# ...or for a face missed in up to this many frames before, where it was (a blink, a turned head).
MEMORY_FRAMES = 10
# Shared by every detector of the process: one built by a reload never hands out a number in use.
_TRACK_NUMBERS = itertools.count(1)


class Tracks:
    """Track numbers for the faces of successive frames: a face keeps the number of the face it overlaps
    most (at least SAME_FACE_IOU; each claimed once) among the last frame's and those missed lately;
    a new face gets a new number."""

    def __init__(self):
        self.last: list[Face] = []
        self._missed: list[tuple[Face, int]] = []  # (face, frames since it was last seen)

    def match(self, faces: list[Face]) -> list[Face]:
        known = self.last + [face for face, _ in self._missed]
        pairs = []
        if faces and known:
            boxes = np.array([f.corners for f in known], np.float32)
            pairs = [(float(o), j, i) for i, face in enumerate(faces)
                     for j, o in enumerate(blazeface.iou(np.array(face.corners, np.float32), boxes))
                     if o >= SAME_FACE_IOU]
        numbers: dict[int, int] = {}  # new face -> its number
        claimed: set[int] = set()
        for _, j, i in sorted(pairs, key=lambda p: (-p[0], p[1])):  # best overlap first; a tie: the last frame's
            if i not in numbers and j not in claimed:
                numbers[i] = known[j].track
                claimed.add(j)
        missed = [(f, 1) for j, f in enumerate(self.last) if j not in claimed]
        missed += [(f, age + 1) for k, (f, age) in enumerate(self._missed) if len(self.last) + k not in claimed]
        self._missed = [(f, age) for f, age in missed if age <= MEMORY_FRAMES]
        self.last = [replace(face, track=numbers.get(i) or next(_TRACK_NUMBERS)) for i, face in enumerate(faces)]
        return self.last

    def keep(self, faces: list[Face]) -> list[Face]:
        """Faces the detector followed itself: they carry their numbers already."""
        self._missed = [(f, age + 1) for f, age in self._missed if age < MEMORY_FRAMES]
        self.last = faces
        return faces


class HaarDetector:
    """Runs on a downscaled grayscale frame; boxes come back in original-frame pixels."""

    def __init__(self, cfg: DetectorConfig):
        has_cascades = hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data")
        path = Path(cv2.data.haarcascades if has_cascades else "") / "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        if not path.is_file():
            raise DetectorError("this OpenCV has no Haar cascades (OpenCV 5 removed them): "
                                "install opencv-python-headless<5, or set [detector] kind = \"yunet\"")
        self.cascade = cv2.CascadeClassifier(str(path))
        self.cfg = cfg
        self.tracks = Tracks()

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = _gray(image)
        scale = min(1.0, self.cfg.detect_width / gray.shape[1])
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        min_px = max(12, int(self.cfg.min_face_px * scale))
        boxes = self.cascade.detectMultiScale(small, scaleFactor=self.cfg.scale_factor,
                                              minNeighbors=self.cfg.min_neighbors, minSize=(min_px, min_px))
        return self.tracks.match([_scaled_face(box, scale) for box in boxes])


class YuNetDetector:
    """OpenCV's FaceDetectorYN with a user-supplied face_detection_yunet_*.onnx."""

    def __init__(self, cfg: DetectorConfig):
        if not cfg.model or not Path(cfg.model).is_file():
            raise DetectorError(f"[detector] model: YuNet needs an existing .onnx file, got {cfg.model!r}")
        self.cfg = cfg
        try:
            self.net = cv2.FaceDetectorYN.create(cfg.model, "", (320, 320), cfg.score_threshold)
        except cv2.error as e:  # any file that is not an ONNX face detector, e.g. a text file
            raise DetectorError(f"[detector] model: {cfg.model}: not a usable YuNet .onnx model "
                                f"({(e.err or str(e)).strip()[:200]})") from None
        self.tracks = Tracks()

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = _gray(image)
        scale = min(1.0, self.cfg.detect_width / gray.shape[1])
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        self.net.setInputSize((small.shape[1], small.shape[0]))
        _, found = self.net.detect(cv2.cvtColor(small, cv2.COLOR_GRAY2BGR))
        faces = [_scaled_face(row[:4], scale) for row in (found if found is not None else [])]
        return self.tracks.match([f for f in faces if min(f.w, f.h) >= self.cfg.min_face_px])


# Following a face: the square searched around last frame's box, as a multiple of its side, and the
# most faces followed (each costs one short-range pass; more than this, the whole frame is cheaper).
TRACK_SCALE = 2.0
MAX_TRACKED = 2


class _Net:
    """One BlazeFace model in LiteRT: a square RGB image in, detections in its normalised coordinates out."""

    def __init__(self, path: Path, variant: str):
        self.variant = blazeface.VARIANTS[variant]
        try:
            self.interpreter = interpreter_class()(model_path=str(path), num_threads=1)
            self.interpreter.allocate_tensors()
        except (ModelError, ValueError, RuntimeError) as e:
            raise DetectorError(f"{path}: cannot load BlazeFace ({str(e).splitlines()[0]})") from None
        shape = tuple(self.interpreter.get_input_details()[0]["shape"].tolist())
        if shape != (1, self.variant.input_size, self.variant.input_size, 3):
            raise DetectorError(f"{path}: input {shape} is not BlazeFace {variant} range's "
                                f"{self.variant.input_size}x{self.variant.input_size} RGB (check [detector] variant)")
        self.input = self.interpreter.get_input_details()[0]["index"]
        # the two outputs are told apart by shape: 16 box numbers vs 1 logit per anchor
        outputs = {d["shape"][-1]: d["index"] for d in self.interpreter.get_output_details()}
        self.boxes_out, self.scores_out = outputs[16], outputs[1]
        self.anchors = blazeface.ssd_anchors(self.variant.input_size, self.variant.strides,
                                             self.variant.anchors_per_cell)

    def run(self, tensor: np.ndarray, min_score: float) -> blazeface.Detections:
        self.interpreter.set_tensor(self.input, tensor)
        self.interpreter.invoke()
        return blazeface.weighted_nms(blazeface.decode(
            self.interpreter.get_tensor(self.boxes_out)[0], self.interpreter.get_tensor(self.scores_out)[0],
            self.anchors, self.variant.input_size, min_score))


class BlazeFaceDetector:
    """MediaPipe BlazeFace run with LiteRT; the model files ship in the package (models/NOTICE).

    The configured model searches the whole frame. With the full-range model, the short-range one
    (a third of its cost) then follows each face found in a square twice its size for up to
    `track_frames` frames, and double-checks whole-frame finds that score below `verify_below` (a
    spoon's reflection scored 0.68 in the full-range model and under 0.5 in the short-range one; 100
    of 100 real faces scored 0.82 or more there).
    A face it loses, or more than MAX_TRACKED faces, sends the next frame to a whole-frame search,
    which also runs at least every `track_frames + 1` frames so that a newcomer is seen.
    """

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        path = Path(cfg.model) if cfg.model else blazeface.model_path(cfg.variant)
        if not path.is_file():
            raise DetectorError(f"{path}: BlazeFace model missing (reinstall moodcast, "
                                "or set [detector] kind = \"haar\")")
        self.net = _Net(path, cfg.variant)
        self.variant = self.net.variant
        self.near = _Net(blazeface.model_path("short"), "short") if cfg.variant == "full" else None
        self._letterbox: blazeface.Letterbox | None = None
        self.tracks = Tracks()  # .last: the faces of the last frame, which are followed
        self._since_search = 0
        self.searches = 0  # whole-frame searches, for the bench's and the tests' counts

    def detect(self, image: np.ndarray) -> list[Face]:
        """The faces in `image`, each with its track number: a followed face keeps its own; a face a
        whole-frame search finds takes that of the last frame's face it overlaps (Tracks)."""
        if self.tracks.last and self._since_search < self.cfg.track_frames:
            again = self._follow(image, self.tracks.last)
            if again is not None:
                self._since_search += 1
                return self.tracks.keep(again)
        self._since_search = 0
        return self.tracks.match(self._search(image))

    def _search(self, image: np.ndarray) -> list[Face]:
        self.searches += 1
        lb, (h, w) = self._letterbox, image.shape[:2]
        if lb is None or (lb.side, lb.pad_x, lb.pad_y) != _square((h, w)):
            lb = self._letterbox = blazeface.Letterbox(h, w, self.variant.input_size)
        found = self.net.run(lb.tensor(image), self.cfg.score_threshold)
        faces = [_face(lb, box, kps, score)
                 for box, kps, score in zip(found.boxes, found.keypoints, found.scores, strict=True)]
        if self.near is not None:
            faces = [f for f in faces if f.score >= self.cfg.verify_below or self._near(image, f) is not None]
        return [f for f in faces if min(f.w, f.h) >= self.cfg.min_face_px]

    def _follow(self, image: np.ndarray, faces: list[Face]) -> list[Face] | None:
        """Each face again, searched near where it was; None when one is lost or there are too many."""
        if self.near is None or len(faces) > MAX_TRACKED:
            return None
        again = [self._near(image, face) for face in faces]
        if any(f is None or min(f.w, f.h) < self.cfg.min_face_px for f in again):
            return None
        return [f for f in again if f is not None]

    def _near(self, image: np.ndarray, face: Face) -> Face | None:
        """The short-range model's best face in the square TRACK_SCALE times `face` around it, if it overlaps."""
        assert self.near is not None
        side = max(8, round(TRACK_SCALE * max(face.w, face.h)))
        x0, y0 = face.x + face.w // 2 - side // 2, face.y + face.h // 2 - side // 2
        lb = blazeface.Letterbox(side, side, self.near.variant.input_size)
        found = self.near.run(lb.tensor(_square_crop(image, x0, y0, side)), self.cfg.score_threshold)
        near = [_face(lb, box, kps, score, (x0, y0))
                for box, kps, score in zip(found.boxes, found.keypoints, found.scores, strict=True)]
        if not near:
            return None
        overlap = blazeface.iou(np.array(face.corners, np.float32), np.array([f.corners for f in near], np.float32))
        best = max((f for f, o in zip(near, overlap, strict=True) if o >= SAME_FACE_IOU), key=lambda f: f.score,
                   default=None)
        return best and replace(best, track=face.track)


def _face(lb: blazeface.Letterbox, box: np.ndarray, keypoints: np.ndarray, score: float,
          offset: tuple[int, int] = (0, 0)) -> Face:
    shift = np.array(offset, np.float32)
    (x0, y0), (x1, y1) = lb.to_frame(box.reshape(2, 2)) + shift
    eyes = lb.to_frame(keypoints[:2]) + shift
    return Face(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)), float(score),
                ((float(eyes[0, 0]), float(eyes[0, 1])), (float(eyes[1, 0]), float(eyes[1, 1]))))


def _scaled_face(box, scale: float) -> Face:
    """x, y, w, h found on a frame shrunk by `scale` -> the Face in original-frame pixels."""
    x, y, w, h = (int(round(float(v) / scale)) for v in box)
    return Face(x, y, w, h)


def _square_crop(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The side x side square at (x0, y0) of the frame; where it leaves the frame, black (as letterbox bars)."""
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
    if cx1 <= cx0 or cy1 <= cy0:
        return np.zeros((side, side) + image.shape[2:], image.dtype)
    return cv2.copyMakeBorder(image[cy0:cy1, cx0:cx1], cy0 - y0, y0 + side - cy1, cx0 - x0, x0 + side - cx1,
                              cv2.BORDER_CONSTANT, value=0)


def _square(shape: tuple[int, int]) -> tuple[int, int, int]:
    side = max(shape)
    return side, (side - shape[1]) // 2, (side - shape[0]) // 2


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def make_detector(cfg: DetectorConfig):
    kinds = {"blazeface": BlazeFaceDetector, "yunet": YuNetDetector, "haar": HaarDetector}
    return kinds[cfg.kind](cfg)


def crop_face(image: np.ndarray, face: Face) -> np.ndarray:
    """The face as a grayscale square: upright and framed as FER2013 frames its faces when the
    detector gave eye points (BlazeFace), else the detector's box as it is (Haar, YuNet)."""
    return _gray(_upright(image, face.eyes) if face.eyes else _box(image, face))


def _box(image: np.ndarray, face: Face) -> np.ndarray:
    """The face box as a square crop, clipped to the frame."""
    side = max(face.w, face.h)
    cx, cy = face.x + face.w // 2, face.y + face.h // 2
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    return image[y0:y0 + side, x0:x0 + side]


def _upright(image: np.ndarray, eyes: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    """Rotate about the eyes' midpoint until they are level, and cut the square FER2013 would.

    The model learnt faces whose eyes are level and sit at one place and spacing in the crop;
    a tilted head or a loose detector box otherwise shows it a face it never saw in training.
    """
    (lx, ly), (rx, ry) = eyes
    side = max(8, round(np.hypot(rx - lx, ry - ly) / FER_EYE_DISTANCE))
    centre = ((lx + rx) / 2, (ly + ry) / 2)
    m = cv2.getRotationMatrix2D(centre, float(np.degrees(np.arctan2(ry - ly, rx - lx))), 1.0)
    m[:, 2] += (FER_EYE_CENTRE[0] * side - centre[0], FER_EYE_CENTRE[1] * side - centre[1])
    return cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
