"""The super-resolution CNN Ψ: the 32-channel render at R x R -> RGB at 4R x 4R.

The reference's Upsampler with capacity c: a double-conv stem to 4c channels, two stages of
×2 bilinear upsampling (align_corners=True) each followed by a double conv (to 2c, then c; the
first conv of a stage keeps half its input width), and a 1×1 conv with a sigmoid. A double
conv is two 3×3 convolutions without bias, each followed by InstanceNorm (no affine, no running
statistics) and ReLU; the norm makes the bias redundant.
"""
from __future__ import annotations

import torch
from torch import nn

from avatar.config import ModelConfig

SR_FACTOR = 4


class DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None) -> None:
        mid = mid_channels or out_channels
        super().__init__(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.InstanceNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            nn.InstanceNorm2d(out_channels),
            nn.ReLU(),
        )


class UpStage(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            DoubleConv(in_channels, out_channels, in_channels // 2),
        )


class SuperResolution(nn.Module):
    def __init__(self, in_channels: int = 32, channels: int = 32, out_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stem = DoubleConv(in_channels, 4 * channels)
        self.up1 = UpStage(4 * channels, 2 * channels)
        self.up2 = UpStage(2 * channels, channels)
        self.head = nn.Conv2d(channels, out_channels, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C_in, R, R') -> (B, 3, 4R, 4R') in (0, 1)."""
        return torch.sigmoid(self.head(self.up2(self.up1(self.stem(features)))))

    @classmethod
    def from_config(cls, config: ModelConfig) -> "SuperResolution":
        return cls(in_channels=config.color_channels, channels=config.sr_channels)
