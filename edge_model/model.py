"""VGG16 for 48x48 grayscale faces: 13 conv3x3 (BN + ReLU) in 5 blocks, a compact dense head."""

from __future__ import annotations

import keras
from keras import layers

from moodcast.preprocess import INPUT_SIZE

# Filters per conv layer, block by block (the ImageNet VGG16 layout).
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def build_vgg16(num_classes: int = 7, width: float = 1.0, dense: int = 512, dropout: float = 0.5) -> keras.Model:
    """After five 2x2 pools a 48x48 input is 1x1, so the head sees one feature vector."""
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = inputs
    for b, block in enumerate(VGG16_BLOCKS, start=1):
        for c, filters in enumerate(block, start=1):
            x = layers.Conv2D(max(8, int(filters * width)), 3, padding="same", use_bias=False, name=f"block{b}_conv{c}")(x)
            x = layers.BatchNormalization(name=f"block{b}_bn{c}")(x)
            x = layers.ReLU(name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    units = max(16, int(dense * width))
    for i in (1, 2):
        x = layers.Dropout(dropout, name=f"drop{i}")(x)
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    x = layers.Dropout(dropout, name="drop3")(x)
    # float32 softmax even under a mixed-precision policy, for a stable loss
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name=f"vgg16_w{int(round(width * 100)):03d}")


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass (conv and dense layers)."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            macs += h * w * cout * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            macs += layer.input.shape[-1] * layer.units
    return int(macs)
