"""The 3DMM fitter on synthetic data: known identity, pose and expression rendered through the
real ICT model and an independent pinhole projection must come back out of the fit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.rotations import axis_angle_to_matrix
from tracking.face_model import FaceModel, load_face_model_data
from tracking.fit_config import FitConfig
from tracking.fitter import FaceFitter, _State
from tracking.params import EXPRESSION_NAMES, expression_index
from tracking.pinhole import PinholeCamera

CAMERA = PinholeCamera(640, 480, 60.0)
# Priors small enough that noise-free data pins the answer, large enough to keep it well posed.
EXACT = FitConfig(expression_prior=1e-7, temporal_prior=0.0, identity_prior=1e-9, cold_iterations=40,
                  identity_iterations=60, frame_iterations=6)


@pytest.fixture(scope="module")
def data(shared_data):
    return load_face_model_data(shared_data / "ict_face_model.npz")


@pytest.fixture(scope="module")
def surface(data):
    """400 random points on the face region of the mesh plus the 68 landmark vertices."""
    rng = np.random.default_rng(1)
    faces = data.faces
    face_region = faces[(faces < data.region("face").stop).all(1)]
    tri = face_region[rng.choice(len(face_region), 400, replace=False)]
    bary = rng.dirichlet([2, 2, 2], 400)
    lm = data.landmarks68
    tri = np.concatenate([tri, np.stack([lm, lm, lm], 1)])
    bary = np.concatenate([bary, np.tile([1.0, 0, 0], (68, 1))])
    return tri, bary, np.ones(len(tri))


def render(data, tri, bary, identity, expression, rotation, translation):
    """Reference projection: full-mesh vertices, barycentric points, pinhole in pixels (numpy)."""
    model = FaceModel.from_data(data)
    with torch.no_grad():
        v = model.vertices(torch.tensor(identity, dtype=torch.float32)[None],
                           torch.tensor(expression, dtype=torch.float32)[None])[0].double().numpy()
    points = (v[tri] * bary[..., None]).sum(1)
    R = axis_angle_to_matrix(torch.tensor(rotation, dtype=torch.float64)).numpy()
    cam = points @ R.T + translation
    f = CAMERA.focal
    return np.stack([f * cam[:, 0] / cam[:, 2] + CAMERA.width / 2, f * cam[:, 1] / cam[:, 2] + CAMERA.height / 2], 1)


def random_expression(rng, count=6):
    e = np.zeros(len(EXPRESSION_NAMES))
    e[rng.choice(len(e), count, replace=False)] = rng.uniform(0.2, 0.8, count)
    return e


def random_pose(rng):
    return rng.normal(size=3) * 0.15, np.array([rng.normal() * 0.1, rng.normal() * 0.1, 2.2 + rng.normal() * 0.2])


def angle_deg(a, b):
    ra = axis_angle_to_matrix(torch.tensor(a, dtype=torch.float64))
    rb = axis_angle_to_matrix(torch.tensor(b, dtype=torch.float64))
    cos = ((ra.T @ rb).trace() - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def test_jacobian_matches_finite_differences(data, surface):
    tri, bary, w = surface
    fitter = FaceFitter(data, tri, bary, w, FitConfig(robust_scale=10.0))
    rng = np.random.default_rng(2)
    fitter.set_identity(rng.normal(size=100))
    points = render(data, tri, bary, rng.normal(size=100), random_expression(rng), *random_pose(rng))
    obs = fitter._observation(points[None], CAMERA)
    state = _State(axis_angle_to_matrix(torch.tensor([[0.1, -0.2, 0.05]])), torch.tensor([[0.02, -0.03, 2.1]]),
                   torch.rand(1, 53) * 0.6 + 0.2)
    ev = fitter._evaluate(fitter._base[None], state, obs, None)
    _, _, jac, _, _ = fitter._linearise(ev, state, obs, None)

    def residual(delta):  # same ordering as the Jacobian's rows: (image axis, point)
        s = _State(state.R @ axis_angle_to_matrix(delta[None, :3]), state.t + delta[None, 3:6], state.e + delta[None, 6:])
        e = fitter._evaluate(fitter._base[None], s, obs, None)
        return (e.r * fitter._point_weight.sqrt()[None, :, None]).transpose(1, 2).reshape(-1)

    eps = 1e-3
    eye = torch.eye(59)
    numeric = torch.stack([(residual(eps * eye[i]) - residual(-eps * eye[i])) / (2 * eps) for i in range(59)], -1)
    scale = numeric.abs().amax(0)
    err = (numeric - jac[0]).abs().amax(0) / scale
    assert err[:6].max() < 2e-3, err[:6]
    assert err[6:].max() < 2e-2, err[6:]  # float32 central differences of small blendshape columns


def test_identity_pose_and_expression_are_recovered(data, surface):
    tri, bary, w = surface
    rng = np.random.default_rng(3)
    identity = rng.normal(size=100)
    truth = [(random_expression(rng), *random_pose(rng)) for _ in range(8)]
    frames = [render(data, tri, bary, identity, *t) for t in truth]
    fitter = FaceFitter(data, tri, bary, w, EXACT)
    fits = fitter.fit_identity(frames, CAMERA)
    for fit, (e, r, t), observed in zip(fits, truth, frames):
        assert angle_deg(fit.rotation, r) < 0.3
        assert np.abs(fit.expression - e).max() < 0.08
        assert np.abs(render(data, tri, bary, fitter.identity.numpy(), fit.expression, fit.rotation,
                             fit.translation) - observed).max() < 0.5  # pixels
    # A new frame of the same person is then fitted with the identity held fixed.
    e, r, t = random_expression(rng), *random_pose(rng)
    fit = fitter.fit_frame(render(data, tri, bary, identity, e, r, t), CAMERA)
    assert angle_deg(fit.rotation, r) < 0.3
    assert np.abs(fit.expression - e).max() < 0.08


def test_warm_started_tracking_follows_a_sequence(data, surface):
    tri, bary, w = surface
    rng = np.random.default_rng(4)
    identity = rng.normal(size=100)
    fitter = FaceFitter(data, tri, bary, w, EXACT)
    fitter.set_identity(identity)
    jaw, blink = expression_index("jawOpen"), expression_index("eyeBlink_L")
    previous = None
    for k in range(30):
        e = np.zeros(53)
        e[jaw] = 0.5 + 0.4 * np.sin(k / 4)
        e[blink] = 1.0 if k in (10, 11) else 0.0
        r = np.array([0.02 * k, 0.3 * np.sin(k / 6), 0.0])
        t = np.array([0.0, 0.0, 2.0 + 0.01 * k])
        observed = render(data, tri, bary, identity, e, r, t) + rng.normal(size=(len(tri), 2)) * 0.3
        previous = fitter.fit_frame(observed, CAMERA, previous)
        assert angle_deg(previous.rotation, r) < 0.5
        assert abs(previous.expression[jaw] - e[jaw]) < 0.08
        assert abs(previous.expression[blink] - e[blink]) < 0.15


def test_expression_stays_in_bounds_and_frozen_channels_stay_zero(data, surface):
    tri, bary, w = surface
    rng = np.random.default_rng(5)
    frozen = ("jawForward", "cheekPuff_L", "cheekPuff_R")
    fitter = FaceFitter(data, tri, bary, w, FitConfig(frozen_expressions=frozen))
    for _ in range(5):
        # Exaggerated targets (weights up to 1.6) and noise push against the bounds.
        e = np.clip(random_expression(rng, 10) * 2, 0, 1.6)
        observed = render(data, tri, bary, rng.normal(size=100), e, *random_pose(rng))
        fit = fitter.fit_frame(observed + rng.normal(size=observed.shape) * 2, CAMERA)
        assert fit.expression.min() >= 0 and fit.expression.max() <= 1
        assert all(fit.expression[expression_index(n)] == 0 for n in frozen)


def test_outlier_points_do_not_move_the_pose(data, surface):
    tri, bary, w = surface
    rng = np.random.default_rng(6)
    identity = rng.normal(size=100)
    e, r, t = random_expression(rng), *random_pose(rng)
    observed = render(data, tri, bary, identity, e, r, t)
    bad = rng.choice(len(observed), len(observed) // 20, replace=False)
    observed[bad] += rng.normal(size=(len(bad), 2)) * 60  # 5 % of the points thrown ~60 px off
    fitter = FaceFitter(data, tri, bary, w, EXACT)
    fitter.set_identity(identity)
    fit = fitter.fit_frame(observed, CAMERA)
    assert angle_deg(fit.rotation, r) < 1.0
    assert np.abs(fit.translation - t).max() < 0.02 * t[2]


def test_bad_inputs_are_rejected(data, surface):
    tri, bary, w = surface
    with pytest.raises(ValueError, match="shapes disagree"):
        FaceFitter(data, tri, bary[:-1], w)
    fitter = FaceFitter(data, tri, bary, w)
    with pytest.raises(ValueError, match="points per frame"):
        fitter.fit_frame(np.zeros((5, 2)), CAMERA)
    nan = np.full((len(tri), 2), np.nan)
    with pytest.raises(ValueError, match="NaN"):
        fitter.fit_frame(nan, CAMERA)
    with pytest.raises(ValueError, match="unknown expression"):
        FitConfig(frozen_expressions=("notAChannel",))
