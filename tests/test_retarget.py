"""Neutral calibration and relative retargeting, checked against numpy / scipy computations."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tracking.driving_frame import DrivingFrame
from tracking.retarget import (MAX_GAIN, NeutralCalibrator, Retargeter, chordal_mean_rotation, retarget,
                               retarget_expression)


def frame(expression, rotvec, translation) -> DrivingFrame:
    return DrivingFrame(np.asarray(expression, np.float32), np.asarray(rotvec, np.float32),
                        np.asarray(translation, np.float32))


def test_expression_map_is_piecewise_linear_through_the_neutrals():
    rng = np.random.default_rng(0)
    n = rng.uniform(0, 0.5, 53)  # up to 0.5 the slope above n, 1 / (1 - n), is within MAX_GAIN
    a = rng.uniform(0, 0.3, 53)
    a[:10] = 0.0  # the usual case: the avatar's neutral is all zeros
    for e in rng.uniform(0, 1, (20, 53)):
        got = retarget_expression(e, n, a)
        want = [np.interp(e[c], [0, n[c], 1], [0, a[c], 1]) for c in range(53)]
        np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(retarget_expression(n, n, a), a, atol=1e-6)  # neutral -> neutral
    np.testing.assert_allclose(retarget_expression(np.ones(53), n, a), 1.0, atol=1e-6)  # full stays full


def test_slope_above_a_high_neutral_is_capped():
    # A channel reading 0.9 at rest: jitter of 0.05 above it moves the avatar by MAX_GAIN x 0.05,
    # not 10 x 0.05, and the channel saturates at a + (1 - a) * 0.1 * MAX_GAIN.
    n, a = np.full(53, 0.9), np.zeros(53)
    np.testing.assert_allclose(retarget_expression(np.full(53, 0.95), n, a), 0.05 * MAX_GAIN, atol=1e-6)
    np.testing.assert_allclose(retarget_expression(np.ones(53), n, a), 0.1 * MAX_GAIN, atol=1e-6)
    np.testing.assert_allclose(retarget_expression(np.full(53, 0.45), n, a), 0.0, atol=1e-6)


def test_pose_is_relative_to_the_neutral_in_the_head_frame():
    rng = np.random.default_rng(1)
    driver_n = Rotation.from_rotvec(rng.normal(size=3) * 0.3)
    avatar_n = Rotation.from_rotvec(rng.normal(size=3) * 0.1)
    delta = Rotation.from_rotvec(rng.normal(size=3) * 0.2)  # the driver's motion in their head frame
    t_n, t_a, move = np.array([0.1, 0, 2.5]), np.array([0, 0.05, 3.0]), np.array([0.02, -0.01, 0.1])
    out = retarget(frame(np.zeros(53), (driver_n * delta).as_rotvec(), t_n + move),
                   frame(np.zeros(53), driver_n.as_rotvec(), t_n),
                   frame(np.zeros(53), avatar_n.as_rotvec(), t_a))
    np.testing.assert_allclose(out.rotation, (avatar_n * delta).as_rotvec(), atol=1e-5)
    np.testing.assert_allclose(out.translation, t_a + move, atol=1e-6)


def test_chordal_mean_matches_scipy():
    rng = np.random.default_rng(2)
    rots = Rotation.from_rotvec(rng.normal(size=(30, 3)) * 0.2 + [0.3, -0.5, 0.1])
    got = Rotation.from_rotvec(chordal_mean_rotation(rots.as_rotvec()))
    assert (got.inv() * rots.mean()).magnitude() < 1e-6


def test_calibrator_takes_the_first_second_and_recalibrates_on_request():
    rng = np.random.default_rng(3)
    cal = NeutralCalibrator(duration_s=1.0)
    assert cal.neutral is None
    first = [frame(rng.uniform(0, 0.3, 53), rng.normal(size=3) * 0.05, [0, 0, 2] + rng.normal(size=3) * 0.01)
             for _ in range(30)]
    for k, f in enumerate(first):
        cal.add(f, k / 30)
    cal.add(frame(np.ones(53), [1.0, 0, 0], [5, 5, 5]), 1.0)  # after the window: ignored
    cal.add(frame(np.ones(53), [1.0, 0, 0], [5, 5, 5]), 1.5)
    assert cal.complete
    np.testing.assert_allclose(cal.neutral.expression, np.median([f.expression for f in first], 0), atol=1e-6)
    np.testing.assert_allclose(cal.neutral.translation, np.median([f.translation for f in first], 0), atol=1e-6)
    mean = Rotation.from_rotvec([f.rotation for f in first]).mean()
    assert (Rotation.from_rotvec(cal.neutral.rotation).inv() * mean).magnitude() < 1e-5
    cal.request()
    assert not cal.complete and cal.neutral is None
    cal.add(frame(np.full(53, 0.5), [0, 0.2, 0], [0, 0, 3]), 10.0)
    np.testing.assert_allclose(cal.neutral.expression, 0.5)


def test_retargeter_starts_at_the_avatar_neutral():
    avatar = frame(np.zeros(53), [0, 0, 0], [0, 0, 3.0])
    r = Retargeter(avatar, calibration_s=1.0)
    driver = frame(np.full(53, 0.2), [0.1, 0.3, 0], [0.2, 0.1, 2.0])
    out = r(driver, 0.0)  # the first frame is its own neutral so far
    np.testing.assert_allclose(out.expression, 0, atol=1e-6)
    np.testing.assert_allclose(out.rotation, 0, atol=1e-6)
    np.testing.assert_allclose(out.translation, avatar.translation, atol=1e-6)


def test_calibration_window_must_be_positive():
    with pytest.raises(ValueError):
        NeutralCalibrator(0.0)
