"""λ_exp and λ_pose against a brute-force nearest-landmark search in numpy loops."""
import numpy as np
import pytest
import torch

from avatar.blend import blend_weights, expression_weight, nearest_landmark_distance

T1, T2 = 0.1, 0.25


def brute_force_lambda(points: np.ndarray, landmarks: np.ndarray, kind: str, squared: bool) -> np.ndarray:
    out = np.empty(len(points))
    for i, x in enumerate(points):
        best = np.inf
        for p in landmarks:
            d2 = sum((float(a) - float(b)) ** 2 for a, b in zip(x, p))
            best = min(best, d2)
        d = best if squared else np.sqrt(best)
        if d < T1:
            lam = 1.0
        elif d > T2:
            lam = 0.0
        else:
            lam = (T2 - d) / (T2 - T1)
            if kind == "smooth":
                lam = 3 * lam ** 2 - 2 * lam ** 3
        out[i] = lam
    return out


def points_around(landmarks: np.ndarray, max_dist: float, n: int, rng) -> np.ndarray:
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return landmarks[rng.integers(0, len(landmarks), n)] + direction * rng.uniform(0, max_dist, (n, 1))


@pytest.mark.parametrize("kind", ["linear", "smooth"])
@pytest.mark.parametrize("squared", [False, True])
def test_lambda_matches_brute_force(kind, squared):
    rng = np.random.default_rng(1)
    landmarks = rng.normal(size=(68, 3)) * 0.5
    # Reach past t2 in whichever units the comparison uses.
    points = points_around(landmarks, 0.7 if squared else 0.35, 400, rng)
    lam_exp, lam_pose = blend_weights(torch.from_numpy(points), torch.from_numpy(landmarks), T1, T2,
                                      kind, squared)
    expected = brute_force_lambda(points, landmarks, kind, squared)
    # Every regime is exercised.
    assert (expected == 1).sum() > 20 and (expected == 0).sum() > 20
    assert ((expected > 0) & (expected < 1)).sum() > 20
    np.testing.assert_allclose(lam_exp[:, 0].numpy(), expected, atol=1e-9)
    np.testing.assert_allclose(lam_pose[:, 0].numpy(), 1 - expected, atol=1e-9)
    assert lam_exp.shape == lam_pose.shape == (400, 1)


def test_float32_distance_matches_float64_search():
    rng = np.random.default_rng(2)
    landmarks = rng.normal(size=(68, 3)).astype(np.float32) * 0.5
    points = points_around(landmarks, 0.4, 300, rng).astype(np.float32)
    d = nearest_landmark_distance(torch.from_numpy(points), torch.from_numpy(landmarks), squared=False)
    expected = np.array([np.min(np.linalg.norm(landmarks.astype(np.float64) - x, axis=1)) for x in points])
    # Away from zero the float32 matmul form is accurate to well under a millimetre of head.
    far = expected > 0.05
    np.testing.assert_allclose(d.numpy()[far], expected[far], rtol=1e-4)


def test_smooth_variant_meets_endpoints_flat_and_is_monotone():
    d = torch.linspace(0.0, 0.4, 4001, dtype=torch.float64, requires_grad=True)
    lam = expression_weight(d, T1, T2, "smooth")
    assert lam[d <= T1].eq(1).all() and lam[d >= T2].eq(0).all()
    assert (lam[1:] <= lam[:-1]).all()
    (grad,) = torch.autograd.grad(lam.sum(), d)
    # Zero slope at both ends (no kink), steepest (1.5x the linear slope) in the middle.
    for t in (T1, T2):
        assert grad[(d - t).abs() < 1.5e-4].abs().max() < 0.05  # the linear ramp has 6.7
    assert grad.min().item() == pytest.approx(-1.5 / (T2 - T1), rel=1e-3)


def test_point_on_a_landmark_has_finite_gradient():
    landmarks = torch.randn(68, 3, dtype=torch.float64)
    x = landmarks[:5].clone().requires_grad_(True)
    lam, _ = blend_weights(x, landmarks, T1, T2, "linear", False)
    (grad,) = torch.autograd.grad(lam.sum(), x)
    assert torch.isfinite(grad).all()


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="blend kind"):
        expression_weight(torch.zeros(3), T1, T2, "cubic")
