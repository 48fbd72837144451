"""Face detection: BlazeFace (bundled, with eye points) by default; OpenCV's Haar cascade as the
fallback that needs no model file; YuNet (.onnx by path) optionally.

Every detector takes the frame as it comes (BGR, or grayscale) and returns boxes in frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from moodcast import blazeface
from moodcast.classifier import ModelError, _interpreter_class
from moodcast.config import DetectorConfig


# Where FER2013 puts the eyes in its crops, as fractions of the crop side: the medians of BlazeFace's
# eye points on the 385 of the first 600 Training faces it found (python -m bench.fer_framing).
FER_EYE_DISTANCE = 0.36
FER_EYE_CENTRE = (0.5, 0.40)


class DetectorError(Exception):
    """The detector cannot be created (missing cascade or model file)."""


@dataclass(frozen=True)
class Face:
    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None  # frame pixels, image-left eye first

    @property
    def area(self) -> int:
        return self.w * self.h


class HaarDetector:
    """Runs on a downscaled grayscale frame; boxes come back in original-frame pixels."""

    def __init__(self, cfg: DetectorConfig):
        has_cascades = hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data")
        path = Path(cv2.data.haarcascades if has_cascades else "") / "haarcascade_frontalface_default.xml"
        if not path.is_file():
            raise DetectorError("this OpenCV has no Haar cascades (OpenCV 5 removed them): "
                                "install opencv-python-headless<5, or set [detector] kind = \"yunet\"")
        self.cascade = cv2.CascadeClassifier(str(path))
        self.cfg = cfg

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = _gray(image)
        scale = min(1.0, self.cfg.detect_width / gray.shape[1])
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        min_px = max(12, int(self.cfg.min_face_px * scale))
        boxes = self.cascade.detectMultiScale(small, scaleFactor=self.cfg.scale_factor,
                                              minNeighbors=self.cfg.min_neighbors, minSize=(min_px, min_px))
        return [Face(*(int(round(v / scale)) for v in box)) for box in boxes]


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

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = _gray(image)
        scale = min(1.0, self.cfg.detect_width / gray.shape[1])
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        self.net.setInputSize((small.shape[1], small.shape[0]))
        _, found = self.net.detect(cv2.cvtColor(small, cv2.COLOR_GRAY2BGR))
        faces = [Face(*(int(round(v / scale)) for v in row[:4])) for row in (found if found is not None else [])]
        return [f for f in faces if min(f.w, f.h) >= self.cfg.min_face_px]


class BlazeFaceDetector:
    """MediaPipe BlazeFace run with LiteRT; the model file ships in the package (models/NOTICE)."""

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        self.variant = blazeface.VARIANTS[cfg.variant]
        path = Path(cfg.model) if cfg.model else blazeface.model_path(cfg.variant)
        if not path.is_file():
            raise DetectorError(f"{path}: BlazeFace model missing (reinstall moodcast, or set [detector] kind = \"haar\")")
        try:
            self.interpreter = _interpreter_class()(model_path=str(path), num_threads=1)
            self.interpreter.allocate_tensors()
        except (ModelError, ValueError, RuntimeError) as e:
            raise DetectorError(f"{path}: cannot load BlazeFace ({str(e).splitlines()[0]})") from None
        shape = tuple(self.interpreter.get_input_details()[0]["shape"].tolist())
        if shape != (1, self.variant.input_size, self.variant.input_size, 3):
            raise DetectorError(f"{path}: input {shape} is not BlazeFace {cfg.variant} range's "
                                f"{self.variant.input_size}x{self.variant.input_size} RGB (check [detector] variant)")
        self.input = self.interpreter.get_input_details()[0]["index"]
        # the two outputs are told apart by shape: 16 box numbers vs 1 logit per anchor
        outputs = {d["shape"][-1]: d["index"] for d in self.interpreter.get_output_details()}
        self.boxes_out, self.scores_out = outputs[16], outputs[1]
        self.anchors = blazeface.ssd_anchors(self.variant.input_size, self.variant.strides,
                                             self.variant.anchors_per_cell)
        self._letterbox: blazeface.Letterbox | None = None

    def detect(self, image: np.ndarray) -> list[Face]:
        lb = self._letterbox
        if lb is None or (lb.side, lb.pad_x, lb.pad_y) != _square(image.shape[:2]):
            lb = self._letterbox = blazeface.Letterbox(*image.shape[:2], self.variant.input_size)
        self.interpreter.set_tensor(self.input, lb.tensor(image))
        self.interpreter.invoke()
        found = blazeface.weighted_nms(blazeface.decode(
            self.interpreter.get_tensor(self.boxes_out)[0], self.interpreter.get_tensor(self.scores_out)[0],
            self.anchors, self.variant.input_size, self.cfg.score_threshold))
        return [face for box, kps, score in zip(found.boxes, found.keypoints, found.scores)
                if min((face := _face(lb, box, kps, score)).w, face.h) >= self.cfg.min_face_px]


def _face(lb: blazeface.Letterbox, box: np.ndarray, keypoints: np.ndarray, score: float) -> Face:
    (x0, y0), (x1, y1) = lb.to_frame(box.reshape(2, 2))
    eyes = lb.to_frame(keypoints[:2])
    return Face(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)), float(score),
                ((float(eyes[0, 0]), float(eyes[0, 1])), (float(eyes[1, 0]), float(eyes[1, 1]))))


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
