"""γ and the per-point MLP against explicit, slower computations."""
import math

import pytest
import torch

from avatar.config import encoded_dim
from avatar.encoding import positional_encoding
from avatar.mlp import PointMLP
from avatar.profiles import get_profile


def gamma_by_loop(x: torch.Tensor, num_freqs: int) -> torch.Tensor:
    rows = []
    for row in x.tolist():
        values = list(row)
        for k in range(num_freqs):
            values += [math.sin(2 ** k * v) for v in row]
            values += [math.cos(2 ** k * v) for v in row]
        rows.append(values)
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("dim", [3, 6])
def test_positional_encoding_matches_loop(dim):
    x = torch.randn(17, dim, dtype=torch.float64) * 2
    out = positional_encoding(x, 4)
    assert out.shape == (17, encoded_dim(dim, 4)) == (17, 9 * dim)
    torch.testing.assert_close(out, gamma_by_loop(x, 4), rtol=0, atol=1e-12)


def test_encoded_widths_are_27_and_54():
    assert encoded_dim(3, 4) == 27 and encoded_dim(6, 4) == 54


def mlp_by_hand(mlp: PointMLP, x: torch.Tensor, skip: int, final_tanh: bool) -> torch.Tensor:
    y = x
    n = len(mlp.layers)
    for i, layer in enumerate(mlp.layers):
        if i == skip:
            y = torch.cat([y, x], 1)
        y = y @ layer.weight.T + layer.bias
        if i < n - 1:
            y = torch.where(y > 0, y, 0.01 * y)
    return torch.tanh(y) if final_tanh else y


@pytest.mark.parametrize("dims,skip", [([5, 4], None), ([5, 7, 4], 1), ([5, 7, 6, 4], 2),
                                       ([9, 8, 8, 8, 8, 8, 3], 3)])
@pytest.mark.parametrize("final_tanh", [False, True])
def test_mlp_skip_wiring_matches_manual_composition(dims, skip, final_tanh):
    torch.manual_seed(0)
    mlp = PointMLP(dims, final_tanh=final_tanh).double()
    for i, layer in enumerate(mlp.layers):
        assert layer.in_features == dims[i] + (dims[0] if i == skip else 0)
        assert layer.out_features == dims[i + 1]
    x = torch.randn(31, dims[0], dtype=torch.float64)
    torch.testing.assert_close(mlp(x), mlp_by_hand(mlp, x, skip, final_tanh), rtol=0, atol=1e-12)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown profile 'huge'; choose one of cpu, cpu-fast, tiny, small, full"):
        get_profile("huge")
