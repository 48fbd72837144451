"""VGG16 for 48x48 grayscale faces in Keras: the graph the TFLite converter reads.

Training happens in PyTorch (edge_model.net); edge_model.handoff copies the weights in here.
"""

from __future__ import annotations

import keras
from keras import layers

from edge_model.architecture import BN_EPSILON, DENSE_UNITS, VGG16_BLOCKS, layer_width, model_name
from moodcast.vision.preprocess import INPUT_SIZE


def build_vgg16(num_classes: int = 7, width: float = 1.0, dense: int = DENSE_UNITS,
                dropout: float = 0.5) -> keras.Model:
    """After five 2x2 pools a 48x48 input is 1x1, so the head sees one feature vector."""
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = inputs
    for b, block in enumerate(VGG16_BLOCKS, start=1):
        for c, filters in enumerate(block, start=1):
            x = layers.Conv2D(layer_width(filters, width), 3, padding="same", use_bias=False,
                              name=f"block{b}_conv{c}")(x)
            x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"block{b}_bn{c}")(x)
            x = layers.ReLU(name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    units = layer_width(dense, width, floor=16)
    for i in (1, 2):
        x = layers.Dropout(dropout, name=f"drop{i}")(x)
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    x = layers.Dropout(dropout, name="drop3")(x)
    # float32 softmax even under a mixed-precision policy, for a stable loss
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name=model_name(width))


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
