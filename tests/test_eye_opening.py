"""Blink weights solved from the detected lid gap (tracking/eye_opening.py), on synthetic heads:
the real ICT model at a random identity, expression and pose, its 68 landmarks projected by an
independent pinhole in numpy, must give back the blink weights it was posed with, from a fit
whose blink weights are wrong."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.rotations import axis_angle_to_matrix
from tracking.eye_opening import EyeOpeningMatcher, eye_aspect_ratios
from tracking.face_model import CanonicalLandmarks, load_face_model_data
from tracking.params import expression_index
from tracking.pinhole import PinholeCamera

CAMERA = PinholeCamera(640, 480, 60.0)
BLINKS = [expression_index("eyeBlink_R"), expression_index("eyeBlink_L")]


@pytest.fixture(scope="module")
def landmarks(shared_data):
    return CanonicalLandmarks(load_face_model_data(shared_data / "ict_face_model.npz"))


def project(points, rotation, translation):
    R = axis_angle_to_matrix(torch.tensor(rotation, dtype=torch.float64)).numpy()
    cam = points.astype(np.float64) @ R.T + translation
    f = CAMERA.focal
    return np.stack([f * cam[:, 0] / cam[:, 2] + CAMERA.width / 2, f * cam[:, 1] / cam[:, 2] + CAMERA.height / 2], 1)


def random_head(rng):
    identity = rng.normal(0, 0.5, 100)
    expression = np.zeros(53)
    others = [i for i in range(53) if i not in BLINKS]
    expression[rng.choice(others, 4, replace=False)] = rng.uniform(0.1, 0.5, 4)
    expression[BLINKS] = rng.uniform(0.05, 0.95, 2)
    rotation = rng.normal(0, 0.2, 3)
    translation = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), rng.uniform(2.0, 4.0)])
    return identity, expression, rotation, translation


def test_blink_weights_come_back_from_the_lid_gap(landmarks):
    rng = np.random.default_rng(3)
    matcher = EyeOpeningMatcher(landmarks, CAMERA)
    for _ in range(20):
        identity, expression, rotation, translation = random_head(rng)
        detected = project(landmarks(identity, expression[None])[0], rotation, translation)
        wrong = expression.copy()
        wrong[BLINKS] = rng.uniform(0, 1, 2)
        solved = matcher.match(identity, wrong.astype(np.float32), rotation, translation, detected)
        np.testing.assert_allclose(solved[BLINKS], expression[BLINKS], atol=0.01)
        others = [i for i in range(53) if i not in BLINKS]
        np.testing.assert_array_equal(solved[others], wrong.astype(np.float32)[others])


def test_the_eye_aspect_ratio_of_a_known_eye():
    points = np.zeros((68, 2))
    # Right eye: corners 4 apart, lid gaps 1 and 2 -> (1 + 2) / 2 / 4; left eye: closed.
    points[36:42] = [[0, 0], [1, -0.5], [3, -1], [4, 0], [3, 1], [1, 0.5]]
    points[42:48] = [[10, 0], [11, 0], [13, 0], [14, 0], [13, 0], [11, 0]]
    np.testing.assert_allclose(eye_aspect_ratios(points), [0.375, 0.0])


def test_a_lid_beyond_the_model_range_is_held_at_the_bound_and_bad_points_change_nothing(landmarks):
    rng = np.random.default_rng(4)
    matcher = EyeOpeningMatcher(landmarks, CAMERA)
    identity, expression, rotation, translation = random_head(rng)
    detected = project(landmarks(identity, expression[None])[0], rotation, translation)
    shut = detected.copy()
    for ids in (range(36, 42), range(42, 48)):
        ids = list(ids)
        shut[ids[1:3]] = shut[ids[5:3:-1]] = (detected[ids[1:3]] + detected[ids[5:3:-1]]) / 2
    wide = detected.copy()
    wide[[37, 38, 43, 44], 1] -= 40.0
    e = expression.astype(np.float32)
    assert np.all(matcher.match(identity, e, rotation, translation, shut)[BLINKS] == 1.0)
    assert np.all(matcher.match(identity, e, rotation, translation, wide)[BLINKS] == 0.0)
    broken = detected.copy()
    broken[40] = np.nan
    np.testing.assert_array_equal(matcher.match(identity, e, rotation, translation, broken), e)
