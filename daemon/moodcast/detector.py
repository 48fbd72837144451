"""Face detection: OpenCV's bundled Haar cascade by default, YuNet (.onnx by path) optionally."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from moodcast.config import DetectorConfig


class DetectorError(Exception):
    """The detector cannot be created (missing cascade or model file)."""


@dataclass(frozen=True)
class Face:
    x: int
    y: int
    w: int
    h: int

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

    def detect(self, gray: np.ndarray) -> list[Face]:
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

    def detect(self, gray: np.ndarray) -> list[Face]:
        scale = min(1.0, self.cfg.detect_width / gray.shape[1])
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        self.net.setInputSize((small.shape[1], small.shape[0]))
        _, found = self.net.detect(cv2.cvtColor(small, cv2.COLOR_GRAY2BGR))
        faces = [Face(*(int(round(v / scale)) for v in row[:4])) for row in (found if found is not None else [])]
        return [f for f in faces if min(f.w, f.h) >= self.cfg.min_face_px]


def make_detector(cfg: DetectorConfig):
    return YuNetDetector(cfg) if cfg.kind == "yunet" else HaarDetector(cfg)


def crop_face(gray: np.ndarray, face: Face) -> np.ndarray:
    """The face box as a square crop, clipped to the frame."""
    side = max(face.w, face.h)
    cx, cy = face.x + face.w // 2, face.y + face.h // 2
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    return gray[y0:y0 + side, x0:x0 + side]
