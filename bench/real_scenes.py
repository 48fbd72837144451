"""Real faces at living-room sizes: each real photo scaled so its face is 40-200 px, placed at a
random spot of a 640x480 frame over the bench's face-free backdrop, with its own surroundings.

The bench's FER scenes paste a 48x48 crop that the face fills edge to edge, feathered and gray
on a coloured backdrop: what the Haar cascade was trained on, but no face a camera sees, and
BlazeFace (trained on whole heads in context) finds few of them. These scenes keep hair, neck and
shoulders. A photo's reference box is where BlazeFace and Haar agree on the photo at full size
(their mean box, IoU >= 0.4), so neither detector defines it alone; photos where they disagree
are left out. Made on demand from the photos in ../shared/data/frames, never written to the repo.
"""

from __future__ import annotations

import cv2
import numpy as np

from bench.scenes import FACE_PX, HEIGHT, WIDTH, Scene, background, iou
from moodcast.config import DetectorConfig
from moodcast.vision.detector import make_detector

Box = tuple[int, int, int, int]


def references(photos: list[Scene]) -> list[tuple[Scene, Box]]:
    """(photo, reference box of its largest face) for each photo both detectors agree on."""
    blaze = make_detector(DetectorConfig(min_face_px=40, track_frames=0))  # unrelated photos: each searched whole
    haar = make_detector(DetectorConfig(kind="haar", min_face_px=40))
    out = []
    for photo in photos:
        faces = sorted(blaze.detect(photo.image), key=lambda f: f.area, reverse=True)
        if not faces:
            continue
        b = (faces[0].x, faces[0].y, faces[0].w, faces[0].h)
        agree = [(h.x, h.y, h.w, h.h) for h in haar.detect(photo.image) if iou(b, (h.x, h.y, h.w, h.h)) >= 0.4]
        if agree:
            out.append((photo, tuple(int(round((u + v) / 2)) for u, v in zip(b, agree[0], strict=False))))
    return out


def real_scene(photo: Scene, ref: Box, seed: int) -> Scene:
    """The photo scaled so the reference face is 40-200 px, placed so the face lands anywhere in the frame."""
    rng = np.random.default_rng(seed)
    side = int(rng.integers(FACE_PX[0], FACE_PX[1] + 1))
    scale = side / max(ref[2], ref[3])
    image = cv2.resize(photo.image, None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    fx, fy = int(rng.integers(0, WIDTH - side + 1)), int(rng.integers(0, HEIGHT - side + 1))
    dx, dy = fx - int(round(ref[0] * scale)), fy - int(round(ref[1] * scale))  # photo origin in the frame
    frame = background(seed)
    x0, y0 = max(0, dx), max(0, dy)
    x1, y1 = min(WIDTH, dx + image.shape[1]), min(HEIGHT, dy + image.shape[0])
    frame[y0:y1, x0:x1] = image[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    box = (fx, fy, int(round(ref[2] * scale)), int(round(ref[3] * scale)))
    return Scene(frame, box, photo.label, "real:" + photo.source)


def real_scenes(photos: list[Scene], n: int, seed: int = 5) -> list[Scene]:
    refs = references(photos)
    return [real_scene(*refs[k % len(refs)], seed * 100003 + k) for k in range(n)] if refs else []
