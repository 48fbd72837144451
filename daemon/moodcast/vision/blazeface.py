"""MediaPipe BlazeFace (short- and full-range) run with LiteRT: SSD anchors, decoding, weighted NMS.

The model sees the frame letterboxed into a square of `input_size` pixels, RGB scaled to [-1, 1],
and returns, per anchor, one logit and 16 numbers: box centre offset, box size and six keypoints
(x, y pairs), all in input pixels relative to the anchor centre. The anchor layout, the sigmoid
scores and the weighted NMS follow MediaPipe's graph options
(mediapipe/modules/face_detection/face_detection_{short,full}_range_common.pbtxt and
calculators/tflite/ssd_anchors_calculator.cc); the score threshold is [detector] score_threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

RAW_SCORE_LIMIT = 80.0  # MediaPipe clips logits at 100; exp(100) overflows float32, 80 does not
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold for both variants


@dataclass(frozen=True)
class Variant:
    file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: int  # per layer: 2 when interpolated_scale_aspect_ratio = 1.0, else 1


VARIANTS = {
    # faces within ~2 m of a phone camera; 896 anchors: 16x16x2 at stride 8, then 8x8x6 (3 layers x 2)
    "short": Variant("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    # faces up to ~5 m; 2304 anchors: one per cell of a 48x48 grid at stride 4
    "full": Variant("face_detection_full_range.tflite", 192, (4,), 1),
}
KEYPOINTS = 6  # in MediaPipe's order: the eye on the image's left, the other eye, nose, mouth, two ear points


def model_path(variant: str) -> Path:
    return Path(str(resources.files("moodcast") / "models" / VARIANTS[variant].file))


def ssd_anchors(input_size: int, strides: tuple[int, ...], anchors_per_cell: int) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], in the order the model's outputs are laid out.

    Consecutive layers with the same stride share one feature map, so their anchors are
    interleaved per cell (MediaPipe's SsdAnchorsCalculator); with fixed_anchor_size every anchor
    is 1x1, so only the centres matter.
    """
    out, layer = [], 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        cells = input_size // strides[layer]
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xs, ys = np.meshgrid(centres, centres)
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, (same - layer) * anchors_per_cell, axis=0))
        layer = same
    return np.concatenate(out)


@dataclass
class Detections:
    """Boxes (N, 4) as x0, y0, x1, y1 and keypoints (N, 6, 2), both normalised to the model input."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int,
           min_score: float) -> Detections:
    """The model's raw outputs (N, 16) and (N,) -> the detections scoring at least `min_score`.

    The threshold is applied to the logits (the sigmoid is monotonic), so only the few anchors
    that pass are converted: a frame has thousands of anchors and a handful of candidates.
    """
    logits = raw_scores.reshape(-1)
    keep = np.flatnonzero(logits >= _logit(min_score))
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
    keep, scores = keep[scores >= min_score], scores[scores >= min_score]  # the logit's rounding, either way
    raw = raw_boxes.reshape(-1, 2 + KEYPOINTS, 2)[keep] / input_size
    centre = raw[:, 0] + anchors[keep]
    half = raw[:, 1] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 2:] + anchors[keep][:, None, :]
    valid = np.all(half > 0, axis=1)
    return Detections(boxes[valid], keypoints[valid], scores[valid])


def _logit(p: float) -> float:
    """The logit whose sigmoid is `p`, a hair lower so that float rounding never drops an anchor at `p`."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    return float(np.log(p / (1.0 - p))) - 1e-4


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(d: Detections, iou_threshold: float = NMS_IOU) -> Detections:
    """MediaPipe's WEIGHTED NMS: each cluster of overlapping boxes becomes their score-weighted mean.

    Neighbouring anchors all fire on one face; averaging them (rather than keeping only the best,
    as plain NMS does) steadies the box and the eye points from frame to frame.
    """
    order = np.argsort(-d.scores)
    boxes, keypoints, scores = d.boxes[order], d.keypoints[order], d.scores[order]
    remaining = np.arange(len(scores))
    out_boxes, out_kps, out_scores = [], [], []
    while remaining.size:
        overlap = iou(boxes[remaining[0]], boxes[remaining]) > iou_threshold
        cluster, remaining = remaining[overlap], remaining[~overlap]
        w = scores[cluster][:, None]
        out_boxes.append((boxes[cluster] * w).sum(axis=0) / w.sum())
        out_kps.append((keypoints[cluster] * w[:, :, None]).sum(axis=0) / w.sum())
        out_scores.append(scores[cluster[0]])  # the cluster keeps its best score, as MediaPipe does
    if not out_scores:
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0, KEYPOINTS, 2), np.float32),
                          np.zeros(0, np.float32))
    return Detections(np.array(out_boxes), np.array(out_kps), np.array(out_scores))


def shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` resized down to width x height, averaging the pixels each output pixel covers.

    OpenCV's INTER_AREA is fast only for whole-number factors (640 -> 192 is 3.33: about 1 ms of
    CPU here, a fifth of the detector's whole cost). So first shrink by the largest whole factor
    that divides both sides without going below the target (area averaging, fast), then finish with
    a bilinear step: under 2x it still draws on every source pixel, so nothing aliases (640x480 ->
    320x240 -> 192x144: 0.15 ms). Without such a factor, or if more than 2x is left, INTER_AREA.
    """
    h, w = image.shape[:2]
    factor = next((k for k in range(min(w // width, h // height), 1, -1) if w % k == 0 and h % k == 0), 1)
    if factor > 1:
        image = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    if image.shape[1] == width and image.shape[0] == height:
        return image
    fine = cv2.INTER_LINEAR if image.shape[1] < 2 * width and image.shape[0] < 2 * height else cv2.INTER_AREA
    return cv2.resize(image, (width, height), interpolation=fine)


class Letterbox:
    """Pads a frame to a square (centred, black bars) and scales it to the model input."""

    def __init__(self, height: int, width: int, input_size: int):
        self.side = max(height, width)
        self.pad_x, self.pad_y = (self.side - width) // 2, (self.side - height) // 2
        self.scale = input_size / self.side
        self.input_size = input_size

    def tensor(self, image: np.ndarray) -> np.ndarray:
        """BGR or grayscale uint8 frame -> (1, S, S, 3) float32 RGB in [-1, 1]."""
        h, w = image.shape[:2]
        # shrink first, pad after: padding the small image is 1/25th of the work at 640x480 -> 192
        small = shrink(image, round(w * self.scale), round(h * self.scale))
        rgb = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB if small.ndim == 2 else cv2.COLOR_BGR2RGB)
        top, left = (self.input_size - rgb.shape[0]) // 2, (self.input_size - rgb.shape[1]) // 2
        square = cv2.copyMakeBorder(rgb, top, self.input_size - rgb.shape[0] - top, left,
                                    self.input_size - rgb.shape[1] - left, cv2.BORDER_CONSTANT, value=0)
        return (square.astype(np.float32) * (2.0 / 255.0) - 1.0)[None]

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Normalised model-input coordinates (..., 2) -> frame pixels."""
        return points * self.side - np.array([self.pad_x, self.pad_y], np.float32)
