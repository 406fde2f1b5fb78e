"""The positional encoding γ of the avatar's MLP inputs.

γ(x) = [x, sin(x), cos(x), sin(2x), cos(2x), ..., sin(2^(L-1) x), cos(2^(L-1) x)] with L = 4,
concatenated in that order along the last axis, so a 3-vector becomes 27 values and the 6-D pose
54. As in the reference the frequencies are 1, 2, 4, 8 radians per unit, with no factor π.
"""
from __future__ import annotations

import torch


def positional_encoding(x: torch.Tensor, num_freqs: int = 4) -> torch.Tensor:
    """(..., D) -> (..., D * (1 + 2 * num_freqs))."""
    parts = [x]
    for k in range(num_freqs):
        scaled = x * float(2 ** k)
        parts += [torch.sin(scaled), torch.cos(scaled)]
    return torch.cat(parts, -1)
