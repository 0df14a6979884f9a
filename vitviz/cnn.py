"""A small convolutional network: the teacher of the distilled ViT and the CNN of the
inductive-bias study.

    image (B, C, H, W)
      -> per stage: two 3×3 conv-BN-ReLU, 2×2 max pool   (B, w_s, H/2^s, W/2^s)
      -> global average pool, dropout, linear           (B, num_classes)

Its convolutions build in what a ViT has to learn from data: locality (3×3 kernels),
the 2-D neighbourhood and translation equivariance (the same kernel everywhere).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .scratch import ScratchOutput


@dataclass
class CNNConfig:
    image_size: tuple[int, int] = (28, 28)  # (H, W); any size works, the pool makes it size-independent
    num_channels: int = 3                   # RGB, the same input as the ViTs
    widths: tuple[int, ...] = (32, 64, 128)  # channels of each stage; each stage halves H and W
    dropout: float = 0.2                    # before the classifier
    num_classes: int = 10

    def __post_init__(self):
        if isinstance(self.image_size, int):
            self.image_size = (self.image_size, self.image_size)
        self.image_size, self.widths = tuple(self.image_size), tuple(self.widths)
        if not self.widths:
            raise ValueError("widths must name at least one stage")

    def to_dict(self) -> dict:
        return asdict(self)


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    channels_last = True  # oneDNN's convolutions run ~20-70 % faster on NHWC tensors on a CPU

    def __init__(self, cfg: CNNConfig):
        super().__init__()
        self.config = cfg
        layers, c_in = [], cfg.num_channels
        for width in cfg.widths:
            layers += conv_bn_relu(c_in, width) + conv_bn_relu(width, width) + [nn.MaxPool2d(2)]
            c_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout),
                                  nn.Linear(c_in, cfg.num_classes))
        self.to(memory_format=torch.channels_last)

    def forward(self, pixel_values: torch.Tensor, output_attentions: bool = False) -> ScratchOutput:
        """(B, C, H, W) -> logits (B, num_classes); a CNN has no attentions to return."""
        logits = self.head(self.features(pixel_values.contiguous(memory_format=torch.channels_last)))
        return ScratchOutput(logits, (), logits)
