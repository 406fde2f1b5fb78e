"""The super-resolution CNN Ψ: the 32-channel render at R x R -> RGB at fR x fR (f = 1, 2 or 4).

The reference's Upsampler with capacity c (f = 4): a double-conv stem to 4c channels, two stages
of ×2 bilinear upsampling (align_corners=True) each followed by a double conv (to 2c, then c; the
first conv of a stage keeps half its input width), and a 1×1 conv with a sigmoid. f = 2 keeps
only the first stage and f = 1 none (the stem then feeds the head directly): a CPU profile
renders at a higher R instead of upsampling more.

`residual`: the CNN predicts a correction, in logit space, of the bilinearly upsampled
low-resolution RGB (the render's first three channels), and starts at no correction (a zero
head). Without it the CNN must first learn to reproduce colours from scratch, which takes
thousands of steps a short CPU run does not have; with it the output is as good as the render
from step 0. A double
conv is two 3×3 convolutions without bias, each followed by InstanceNorm (no affine, no running
statistics) and ReLU; the norm makes the bias redundant.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from avatar.config import ModelConfig

SR_FACTOR = 4  # the reference's factor, and the default of ModelConfig.sr_factor
SR_FACTORS = (1, 2, 4)
RESIDUAL_EPS = 1e-3  # keeps the logit of the upsampled RGB finite on the white background


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
    def __init__(self, in_channels: int = 32, channels: int = 32, out_channels: int = 3,
                 factor: int = SR_FACTOR, residual: bool = False) -> None:
        super().__init__()
        if factor not in SR_FACTORS:
            raise ValueError(f"SR factor must be one of {SR_FACTORS}, got {factor}")
        self.in_channels = in_channels
        self.factor = factor
        self.stem = DoubleConv(in_channels, 4 * channels)
        # Module names stay the reference's (up1, up2), so f = 4 checkpoints load unchanged.
        widths = [4 * channels, 2 * channels, channels][:factor.bit_length()]  # one ×2 stage per doubling
        for i in range(len(widths) - 1):
            self.add_module(f"up{i + 1}", UpStage(widths[i], widths[i + 1]))
        self.stages = len(widths) - 1
        self.head = nn.Conv2d(widths[-1], out_channels, kernel_size=1)
        self.residual = residual
        if residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C_in, R, R') -> (B, 3, fR, fR') in (0, 1)."""
        x = self.stem(features)
        for i in range(self.stages):
            x = getattr(self, f"up{i + 1}")(x)
        if not self.residual:
            return torch.sigmoid(self.head(x))
        rgb = features[:, :3]
        if self.factor > 1:
            rgb = F.interpolate(rgb, scale_factor=self.factor, mode="bilinear", align_corners=False)
        rgb = rgb.clamp(RESIDUAL_EPS, 1 - RESIDUAL_EPS)
        return torch.sigmoid(self.head(x) + torch.log(rgb / (1 - rgb)))

    @classmethod
    def from_config(cls, config: ModelConfig) -> "SuperResolution":
        return cls(in_channels=config.color_channels, channels=config.sr_channels, factor=config.sr_factor,
                   residual=config.sr_residual)
