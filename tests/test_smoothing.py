"""One Euro smoothing against a plain scalar transcription of the published algorithm."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tracking.driving_frame import DrivingFrame
from tracking.smoothing import (CoefficientSmoother, OneEuroConfig, OneEuroFilter, OneEuroRotationFilter,
                                SmoothingConfig)


def reference_one_euro(xs, ts, min_cutoff, beta, d_cutoff):
    """Casiez et al. 2012, one scalar channel, written out the way the paper states it."""
    def alpha(cutoff, te):
        r = 2 * math.pi * cutoff * te
        return r / (r + 1)

    out, x_prev, dx_prev, t_prev = [], None, 0.0, None
    for x, t in zip(xs, ts):
        if x_prev is None:
            x_prev, t_prev = x, t
            out.append(x)
            continue
        te = t - t_prev
        dx = (x - x_prev) / te
        dx_hat = alpha(d_cutoff, te) * dx + (1 - alpha(d_cutoff, te)) * dx_prev
        cutoff = min_cutoff + beta * abs(dx_hat)
        x_hat = alpha(cutoff, te) * x + (1 - alpha(cutoff, te)) * x_prev
        x_prev, dx_prev, t_prev = x_hat, dx_hat, t
        out.append(x_hat)
    return np.array(out)


def test_matches_scalar_reference_per_channel():
    rng = np.random.default_rng(0)
    config = OneEuroConfig(min_cutoff=1.3, beta=0.7, d_cutoff=2.0)
    ts = np.cumsum(rng.uniform(0.01, 0.05, 200))  # irregular timestamps, like a live camera
    xs = np.cumsum(rng.normal(size=(200, 5)), 0) * rng.uniform(0.1, 10, 5)  # channels of different scale
    f = OneEuroFilter(config, 5)
    got = np.array([f(x, t) for x, t in zip(xs, ts)])
    for c in range(5):
        want = reference_one_euro(xs[:, c], ts, config.min_cutoff, config.beta, config.d_cutoff)
        np.testing.assert_allclose(got[:, c], want, rtol=1e-12, atol=1e-12)


def test_constant_input_gives_constant_output():
    f = OneEuroFilter(OneEuroConfig(min_cutoff=0.5, beta=3.0), 3)
    value = np.array([0.2, -1.5, 7.0])
    for k in range(50):
        np.testing.assert_allclose(f(value, k / 30), value, rtol=0, atol=1e-15)


def test_step_response_is_the_exponential_of_the_cutoff_without_overshoot():
    fps, cutoff = 30.0, 2.0
    f = OneEuroFilter(OneEuroConfig(min_cutoff=cutoff, beta=0.0), 1)
    f(np.zeros(1), 0.0)
    out = np.array([f(np.ones(1), k / fps)[0] for k in range(1, 60)])
    # beta = 0: a first-order low-pass, remaining error (1 - a)^k with a = 1 / (1 + tau / dt).
    a = 1 / (1 + 1 / (2 * math.pi * cutoff) * fps)
    np.testing.assert_allclose(1 - out, (1 - a) ** np.arange(1, 60), rtol=1e-9, atol=1e-15)
    assert np.all(np.diff(out) > 0) and out.max() < 1


def test_speed_raises_the_cutoff():
    """With beta > 0 a fast ramp lags less than with beta = 0."""
    ts = np.arange(60) / 30
    ramp = 2.0 * ts  # 2 units per second
    lag = {}
    for beta in (0.0, 5.0):
        f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=beta), 1)
        lag[beta] = ramp[-1] - [f(np.array([x]), t) for x, t in zip(ramp, ts)][-1][0]
    assert lag[5.0] < 0.5 * lag[0.0]


def test_repeated_timestamp_is_ignored():
    f = OneEuroFilter(OneEuroConfig(), 1)
    f(np.array([0.0]), 1.0)
    first = f(np.array([1.0]), 1.1)
    assert f(np.array([100.0]), 1.1)[0] == first[0]


@pytest.mark.parametrize("axis", [[1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]])
def test_rotation_about_a_head_axis_matches_scalar_filter_on_the_angle(axis):
    """Channels are the head's own axes (pitch, yaw, roll): turning about one of them is exactly
    the scalar filter on the angle."""
    config = OneEuroConfig(min_cutoff=1.0, beta=2.0)
    rng = np.random.default_rng(1)
    axis = np.array(axis)
    ts = np.arange(100) / 30
    angles = 0.3 * np.sin(ts * 2) + rng.normal(size=100) * 0.01
    f = OneEuroRotationFilter(config)
    got = np.array([f(axis * a, t) for a, t in zip(angles, ts)])
    want = reference_one_euro(angles, ts, config.min_cutoff, config.beta, config.d_cutoff)
    np.testing.assert_allclose(got, want[:, None] * axis, atol=1e-9)


def test_rotation_filter_does_not_flip_across_pi():
    """A head turning through 180 degrees: axis-angle jumps from +pi to -pi, the rotation does not."""
    f = OneEuroRotationFilter(OneEuroConfig(min_cutoff=1.0, beta=1.0))
    ts = np.arange(40) / 30
    angles = np.linspace(math.pi - 0.3, math.pi + 0.3, 40)
    inputs = Rotation.from_rotvec(np.outer(angles, [0, 1, 0]))  # wraps to -pi side past pi
    previous = None
    for rot, t in zip(inputs, ts):
        out = Rotation.from_rotvec(f(rot.as_rotvec(), t))
        # The output stays near the input, and moves a little each frame: no jump through zero.
        assert (out.inv() * rot).magnitude() < 0.2
        if previous is not None:
            assert (previous.inv() * out).magnitude() < 0.05
        previous = out


def test_smoother_keeps_groups_separate():
    config = SmoothingConfig(expression=OneEuroConfig(min_cutoff=5.0), rotation=OneEuroConfig(min_cutoff=0.5),
                             translation=OneEuroConfig(min_cutoff=0.5))
    s = CoefficientSmoother(config)
    s(DrivingFrame(np.zeros(53), np.zeros(3), np.array([0, 0, 2.0])), 0.0)
    out = s(DrivingFrame(np.ones(53), np.array([0.1, 0, 0]), np.array([0, 0, 3.0])), 1 / 30)
    a_fast = 1 / (1 + 30 / (2 * math.pi * 5.0))
    a_slow = 1 / (1 + 30 / (2 * math.pi * 0.5))
    np.testing.assert_allclose(out.expression, a_fast, rtol=1e-6)
    np.testing.assert_allclose(out.rotation, [0.1 * a_slow, 0, 0], rtol=1e-5)
    np.testing.assert_allclose(out.translation, [0, 0, 2 + a_slow], rtol=1e-6)
    s.reset()
    restarted = s(DrivingFrame(np.ones(53), np.zeros(3), np.array([0, 0, 5.0])), 2.0)
    np.testing.assert_allclose(restarted.translation, [0, 0, 5.0])


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        OneEuroConfig(min_cutoff=0.0)
    with pytest.raises(ValueError):
        OneEuroConfig(beta=-1.0)
