"""The SR CNN against a manual composition of its layers with torch.nn.functional."""
import torch
import torch.nn.functional as F

from avatar.profiles import get_profile
from avatar.super_resolution import SuperResolution


def double_conv_by_hand(x, conv_a, conv_b):
    for conv in (conv_a, conv_b):
        x = F.conv2d(x, conv.weight, padding=1)
        mean = x.mean((2, 3), keepdim=True)
        var = x.var((2, 3), unbiased=False, keepdim=True)
        x = torch.relu((x - mean) / torch.sqrt(var + 1e-5))
    return x


def upsample_by_hand(x):
    """×2 bilinear with align_corners=True, written as two interpolation matrices."""
    def matrix(n):
        m = torch.zeros(2 * n, n, dtype=x.dtype)
        for i in range(2 * n):
            pos = i * (n - 1) / (2 * n - 1)
            lo = min(int(pos), n - 2)
            m[i, lo] += 1 - (pos - lo)
            m[i, lo + 1] += pos - lo
        return m
    return matrix(x.shape[2]) @ x @ matrix(x.shape[3]).T


def sr_by_hand(sr: SuperResolution, x):
    convs = [m for m in sr.modules() if isinstance(m, torch.nn.Conv2d)]
    y = double_conv_by_hand(x, convs[0], convs[1])
    y = double_conv_by_hand(upsample_by_hand(y), convs[2], convs[3])
    y = double_conv_by_hand(upsample_by_hand(y), convs[4], convs[5])
    head = convs[6]
    return torch.sigmoid(F.conv2d(y, head.weight, head.bias))


def test_sr_matches_manual_composition_shape_and_range():
    torch.manual_seed(0)
    sr = SuperResolution(in_channels=32, channels=4).double()
    convs = [m for m in sr.modules() if isinstance(m, torch.nn.Conv2d)]
    # Reference widths: stem 32 -> 4c -> 4c, stages (4c -> 2c -> 2c) and (2c -> c -> c), 1x1 to RGB.
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (32, 16, (3, 3)), (16, 16, (3, 3)), (16, 8, (3, 3)), (8, 8, (3, 3)), (8, 4, (3, 3)),
        (4, 4, (3, 3)), (4, 3, (1, 1))]
    x = torch.rand(2, 32, 6, 5, dtype=torch.float64)
    out = sr(x)
    assert out.shape == (2, 3, 24, 20)
    assert out.min() > 0 and out.max() < 1
    torch.testing.assert_close(out, sr_by_hand(sr, x), rtol=0, atol=1e-10)


def test_sr_from_profile():
    cfg = get_profile("tiny").model
    sr = SuperResolution.from_config(cfg)
    assert sr(torch.rand(1, cfg.color_channels, 8, 8)).shape == (1, 3, 32, 32)


def test_factor_two_and_one_keep_the_reference_layers_they_use():
    x = torch.rand(1, 32, 6, 5)
    for factor, size in ((2, (12, 10)), (1, (6, 5))):
        sr = SuperResolution(in_channels=32, channels=4, factor=factor)
        assert sr(x).shape == (1, 3, *size)
        convs = [m for m in sr.modules() if isinstance(m, torch.nn.Conv2d)]
        y = double_conv_by_hand(x, convs[0], convs[1])
        if factor == 2:
            y = double_conv_by_hand(upsample_by_hand(y), convs[2], convs[3])
        assert torch.allclose(sr(x), torch.sigmoid(F.conv2d(y, convs[-1].weight, convs[-1].bias)), atol=1e-5)


def test_residual_sr_starts_as_the_bilinear_upsampled_render():
    """Before training, the residual SR is the render's RGB resized by OpenCV's bilinear filter
    (an independent implementation with the same half-pixel centres)."""
    import cv2
    import numpy as np

    features = torch.rand(1, 32, 9, 7) * 0.9 + 0.05
    sr = SuperResolution(in_channels=32, channels=4, factor=2, residual=True)
    out = sr(features)[0].permute(1, 2, 0).detach().numpy()
    rgb = features[0, :3].permute(1, 2, 0).numpy()
    expected = cv2.resize(rgb, (14, 18), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out - expected).max() < 1e-5
    sr(features).sum().backward()
    assert sr.head.weight.grad.abs().sum() > 0  # the CNN's correction can still be learned
