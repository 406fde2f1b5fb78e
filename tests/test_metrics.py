import math

import numpy as np
import pytest

from avatar.metrics import psnr, ssim


def test_psnr_known_values():
    a = np.zeros((8, 8, 3))
    assert psnr(a, a + 0.1) == pytest.approx(20.0)
    assert psnr(a, a + 0.01) == pytest.approx(40.0)
    assert psnr(a, a) == math.inf


def _ssim_direct(x, y, size=11, sigma=1.5):
    """Slow reference: the SSIM formula evaluated window by window with explicit weighted sums."""
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-r ** 2 / (2 * sigma ** 2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for ch in range(x.shape[2]):
        for i in range(x.shape[0] - size + 1):
            for j in range(x.shape[1] - size + 1):
                a = x[i:i + size, j:j + size, ch]
                b = y[i:i + size, j:j + size, ch]
                ma, mb = (w * a).sum(), (w * b).sum()
                va = (w * (a - ma) ** 2).sum()
                vb = (w * (b - mb) ** 2).sum()
                cov = (w * (a - ma) * (b - mb)).sum()
                values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_direct_formula_on_random_images():
    rng = np.random.default_rng(0)
    x = rng.random((20, 18, 3))
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    assert ssim(x, y) == pytest.approx(_ssim_direct(x, y), abs=1e-6)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-9)


def test_ssim_of_constant_images_has_closed_form():
    # Constant images: no variance, SSIM = (2ab + c1) / (a² + b² + c1).
    a, b = 0.3, 0.6
    x = np.full((16, 16, 1), a)
    y = np.full((16, 16, 1), b)
    c1 = 0.01 ** 2
    assert ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-9)


def test_ssim_rejects_bad_shapes():
    with pytest.raises(ValueError):
        ssim(np.zeros((16, 16, 3)), np.zeros((16, 15, 3)))
    with pytest.raises(ValueError):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
