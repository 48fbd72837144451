"""VGG16 for 48x48 grayscale faces in PyTorch: the network the trainer fits.

It mirrors edge_model.model.build_vgg16 (Keras) layer for layer, so that edge_model.handoff can
copy the trained weights into the Keras graph that the TFLite converter reads. BatchNorm uses
Keras' epsilon (1e-3) so that both frameworks compute the same function.
"""

from __future__ import annotations

import torch
from torch import nn

from edge_model.architecture import BN_EPSILON, DENSE_UNITS, VGG16_BLOCKS, layer_width
from moodcast.vision.preprocess import INPUT_SIZE


class VGG16(nn.Module):
    """13 conv3x3 + BN + ReLU in 5 pooled blocks, then dropout/dense 512-512-classes (logits)."""

    def __init__(self, num_classes: int = 7, width: float = 1.0, dense: int = DENSE_UNITS, dropout: float = 0.5):
        super().__init__()
        self.width = width
        features: list[nn.Module] = []
        channels = 1
        for block in VGG16_BLOCKS:
            for filters in block:
                out = layer_width(filters, width)
                features += [nn.Conv2d(channels, out, 3, padding=1, bias=False),
                             nn.BatchNorm2d(out, eps=BN_EPSILON), nn.ReLU(inplace=True)]
                channels = out
            features.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*features)
        units = layer_width(dense, width, floor=16)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(channels, units), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(units, units), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(units, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 48, 48) standardised faces -> (N, classes) logits."""
        return self.head(torch.flatten(self.features(x), 1))

    def convs(self) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
        layers = list(self.features)
        return [(m, layers[i + 1]) for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]

    def denses(self) -> list[nn.Linear]:
        return [m for m in self.head if isinstance(m, nn.Linear)]


def to_nchw(batch_nhwc) -> torch.Tensor:
    """moodcast.vision.preprocess output (N, 48, 48, 1) float32 -> a (N, 1, 48, 48) tensor."""
    x = torch.from_numpy(batch_nhwc).permute(0, 3, 1, 2)
    assert x.shape[1:] == (1, INPUT_SIZE, INPUT_SIZE), x.shape
    return x.contiguous()
