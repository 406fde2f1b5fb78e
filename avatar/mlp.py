"""Per-point MLP of the avatar's deformation field (the reference's 1x1-conv MLP, as Linear layers).

Layers are nn.Linear on (N, D) rows: equivalent to the reference's Conv1d with kernel 1 and a
plain MatMul/Gemm in ONNX. Hidden layers use LeakyReLU(0.01); the raw input is concatenated
back (after the running activation) in front of layer ⌊len(dims)/2⌋, which lets deep deform MLPs
keep the positional encoding sharp. The output layer has no activation unless `final_tanh`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

LEAKY_SLOPE = 0.01


class PointMLP(nn.Module):
    def __init__(self, dims: Sequence[int], final_tanh: bool = False) -> None:
        super().__init__()
        if len(dims) < 2:
            raise ValueError(f"PointMLP needs at least input and output widths, got {list(dims)}")
        self.dims = [int(d) for d in dims]
        # len(dims) == 2 gives a skip index past the only layer: no skip, as in the reference.
        self.skip_layer = len(self.dims) // 2
        self.final_tanh = final_tanh
        self.layers = nn.ModuleList(
            nn.Linear(self.dims[i] + (self.dims[0] if i == self.skip_layer else 0), self.dims[i + 1])
            for i in range(len(self.dims) - 1)
        )

    def zero_output(self) -> None:
        """Make the MLP output 0 everywhere (its last layer zeroed) while the layers before it
        keep their initialisation, so training can still move it."""
        with torch.no_grad():
            self.layers[-1].weight.zero_()
            self.layers[-1].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == self.skip_layer:
                y = torch.cat([y, x], -1)
            y = layer(y)
            if i != last:
                y = F.leaky_relu(y, LEAKY_SLOPE)
        return torch.tanh(y) if self.final_tanh else y
