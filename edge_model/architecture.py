"""The VGG16 layout both frameworks build: PyTorch trains it (edge_model.net), Keras converts it
(edge_model.model). Plain Python, so either side imports it without the other framework."""

from __future__ import annotations

# Filters per conv layer, block by block (the ImageNet VGG16 layout).
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
DENSE_UNITS = 512
# Keras' BatchNormalization default; the PyTorch twin uses it too so both compute the same function.
BN_EPSILON = 1e-3


def layer_width(filters: int, width: float, floor: int = 8) -> int:
    """Channels of one layer under a width multiplier (1.0 = VGG16)."""
    return max(floor, int(filters * width))


def model_name(width: float) -> str:
    return f"vgg16_w{int(round(width * 100)):03d}"
