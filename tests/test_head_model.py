"""The section-2.3 formulas of GaussianHeadModel recomputed by hand from its MLP outputs."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatar.head_model import GaussianHeadModel
from avatar.profiles import get_profile

TINY = get_profile("tiny").model


def gamma(x: torch.Tensor) -> torch.Tensor:
    """γ written out: x, then sin and cos at 1, 2, 4, 8."""
    return torch.cat([x] + [f(x * w) for w in (1.0, 2.0, 4.0, 8.0) for f in (torch.sin, torch.cos)], -1)


def brute_force_lambda(x: np.ndarray, landmarks: np.ndarray, near, far, kind, squared) -> np.ndarray:
    d = np.linalg.norm(x[:, None, :] - landmarks[None], axis=2).min(1)
    if squared:
        d = d ** 2
    lam = np.clip((far - d) / (far - near), 0, 1)
    return lam * lam * (3 - 2 * lam) if kind == "smooth" else lam


def random_model(kind="linear", squared=False, n=300, seed=0, torso=(0.0, 0.0)) -> GaussianHeadModel:
    cfg = replace(TINY, blend_kind=kind, squared_distance=squared, torso_near=torso[0], torso_far=torso[1])
    torch.manual_seed(seed)
    model = GaussianHeadModel(cfg, n).double()
    with torch.no_grad():
        model.landmarks.copy_(torch.randn(68, 3) * 0.4)
        direction = torch.nn.functional.normalize(torch.randn(n, 3), dim=1)
        reach = 0.7 if squared else 0.35
        model.positions.copy_(model.landmarks[torch.randint(0, 68, (n,))]
                              + direction * torch.rand(n, 1) * reach)
        model.features.copy_(torch.randn(n, cfg.feature_dim))
        model.rotations.copy_(torch.randn(n, 4))
        model.log_scales.copy_(torch.randn(n, 3) * 0.5 - 3)
        model.opacity_logits.copy_(torch.randn(n, 1))
        if model.rest_rotation is not None:
            model.rest_rotation.copy_(torch.randn(3) * 0.2)
    return model


@pytest.mark.parametrize("kind,squared", [("linear", False), ("smooth", True)])
def test_generator_matches_formulas_by_hand(kind, squared):
    model = random_model(kind, squared)
    cfg = model.config
    theta = torch.rand(53, dtype=torch.float64)
    rotvec = np.array([0.2, -0.5, 0.3])
    translation = np.array([0.1, -0.2, 3.0])
    pose = torch.from_numpy(np.concatenate([rotvec, translation]))
    n = model.num_gaussians

    with torch.no_grad():
        lam = torch.from_numpy(brute_force_lambda(model.positions.numpy(), model.landmarks.numpy(),
                                                  0.1, 0.25, kind, squared))[:, None]
        assert (lam == 1).sum() > 10 and (lam == 0).sum() > 10 and ((lam > 0) & (lam < 1)).sum() > 10
        feat = torch.tanh(model.features)
        th = theta.expand(n, 53)
        gb = gamma(pose[None]).expand(n, 54)
        gx = gamma(model.positions)
        exp_in, pose_in = torch.cat([feat, th], 1), torch.cat([feat, gb], 1)
        color = lam * model.exp_color_mlp(exp_in) + (1 - lam) * model.pose_color_mlp(pose_in)
        att = 0.2 * (lam * model.exp_attributes_mlp(exp_in) + (1 - lam) * model.pose_attributes_mlp(pose_in))
        f_exp = model.exp_deform_mlp(torch.cat([gx, th], 1))
        f_pose = model.pose_deform_mlp(torch.cat([gx, gb], 1))
        x_canon = model.positions + 0.3 * (lam * f_exp + (1 - lam) * f_pose)
        q_canon = model.rotations + att[:, :4]
        q_canon = q_canon / q_canon.norm(dim=1, keepdim=True)
        s_canon = torch.exp(model.log_scales + att[:, 4:7])
        a_canon = torch.sigmoid(model.opacity_logits[:, 0] + att[:, 7])

        deformation = model.deformation(theta, pose)
        canonical = model.canonical_gaussians(theta, pose)
        posed = model(theta[None], pose)  # (1, 53) is accepted too

    tol = dict(rtol=0, atol=1e-12)
    torch.testing.assert_close(deformation.lam_exp, lam, **tol)
    torch.testing.assert_close(deformation.exp_deform, f_exp, **tol)
    torch.testing.assert_close(deformation.pose_deform, f_pose, **tol)
    torch.testing.assert_close(canonical.means, x_canon, **tol)
    torch.testing.assert_close(canonical.features, color, **tol)
    torch.testing.assert_close(canonical.quats, q_canon, **tol)
    torch.testing.assert_close(canonical.scales, s_canon, **tol)
    torch.testing.assert_close(canonical.opacities, a_canon, **tol)
    assert canonical.features.shape == (n, cfg.color_channels)

    r = Rotation.from_rotvec(rotvec)
    np.testing.assert_allclose(posed.means.numpy(), x_canon.numpy() @ r.as_matrix().T + translation, atol=1e-12)
    rq = Rotation.from_quat(q_canon.numpy()[:, [1, 2, 3, 0]])
    rq_posed = Rotation.from_quat(posed.quats.numpy()[:, [1, 2, 3, 0]])
    np.testing.assert_allclose(rq_posed.as_matrix(), (r * rq).as_matrix(), atol=1e-12)
    torch.testing.assert_close(posed.scales, s_canon, **tol)
    torch.testing.assert_close(posed.opacities, a_canon, **tol)
    torch.testing.assert_close(posed.features, color, **tol)


def test_expression_only_moves_expression_region():
    """Far from every landmark (λ_exp = 0) a new expression changes nothing."""
    model = random_model()
    pose = torch.zeros(6, dtype=torch.float64)
    with torch.no_grad():
        a = model(torch.zeros(53, dtype=torch.float64), pose)
        b = model(torch.rand(53, dtype=torch.float64), pose)
        lam = model.deformation(torch.zeros(53, dtype=torch.float64), pose).lam_exp[:, 0]
    still = lam == 0
    assert still.sum() > 10
    torch.testing.assert_close(a.means[still], b.means[still], rtol=0, atol=0)
    assert (a.means[~still] - b.means[~still]).abs().max() > 1e-4


def test_deformed_landmarks_by_hand():
    model = random_model()
    theta = torch.rand(53, dtype=torch.float64)
    with torch.no_grad():
        expected = model.landmarks + 0.3 * model.exp_deform_mlp(
            torch.cat([gamma(model.landmarks), theta.expand(68, 53)], 1))
        torch.testing.assert_close(model.deform_landmarks(theta), expected, rtol=0, atol=1e-12)


def test_gradients_reach_every_trained_parameter_and_groups_cover_them():
    model = random_model().float()
    groups = model.parameter_groups(get_profile("tiny").training)
    grouped = [p for g in groups for p in g["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(grouped) == len({id(p) for p in grouped}) == len(trainable)
    assert {id(p) for p in grouped} == {id(p) for p in trainable}
    assert id(model.landmarks) not in {id(p) for p in grouped}
    assert {g["name"]: g["lr"] for g in groups}["scale"] == 3e-5

    out = model.forward_tensors(torch.rand(53), torch.tensor([0.1, 0.2, -0.1, 0.0, 0.1, 3.0]))
    sum(o.square().sum() for o in out).backward()
    for p in trainable:
        assert p.grad is not None and p.grad.abs().sum() > 0


class PosedTensors(torch.nn.Module):
    def __init__(self, model: GaussianHeadModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, expression, pose):
        return self.model.forward_tensors(expression, pose)


@pytest.mark.parametrize("torso", [(0.0, 0.0), (0.05, 0.3)])
def test_export_graph_replays_other_inputs_exactly(torso):
    """No data-dependent Python control flow: a graph exported on one frame is right on another."""
    model = random_model(n=200, torso=torso).float().eval()
    args = (torch.rand(53), torch.tensor([0.1, 0.2, -0.1, 0.0, 0.1, 3.0]))
    exported = torch.export.export(PosedTensors(model), args).module()
    other = (torch.rand(53), torch.tensor([-0.4, 0.1, 0.5, 0.2, -0.1, 2.0]))
    with torch.no_grad():
        for a, b in zip(exported(*other), model.forward_tensors(*other)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_torso_below_the_chin_keeps_the_rest_rotation():
    model = random_model(torso=(0.05, 0.3))
    plain = GaussianHeadModel(replace(model.config, torso_near=0.0, torso_far=0.0), model.num_gaussians).double()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k != "rest_rotation"})
    theta = torch.rand(53, dtype=torch.float64)
    with torch.no_grad():
        below = (model.positions[:, 1] - model.landmarks[8, 1]).numpy()
        weight = np.clip((below - 0.05) / 0.25, 0, 1)
        assert (weight == 0).sum() > 10 and (weight == 1).sum() > 10 and ((weight > 0) & (weight < 1)).sum() > 10
        np.testing.assert_allclose(model.torso_weight()[0][:, 0].numpy(), weight, atol=1e-12)
        at_rest = torch.cat([model.rest_rotation, torch.tensor([0.1, -0.2, 3.0], dtype=torch.float64)])
        for a, b in zip(model.forward_tensors(theta, at_rest), plain.forward_tensors(theta, at_rest)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        turned = at_rest + torch.tensor([0.3, -0.2, 0.1, 0, 0, 0], dtype=torch.float64)
        mine, theirs = model(theta, turned), plain(theta, turned)
    head = weight == 0
    torch.testing.assert_close(mine.means[head], theirs.means[head], rtol=0, atol=1e-12)
    assert (mine.means[~head] - theirs.means[~head]).norm(dim=1).min() > 1e-4


def test_from_points_initialisation():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(200, 3)).astype(np.float32) * 0.3
    landmarks = rng.normal(size=(68, 3)).astype(np.float32) * 0.3
    colors = rng.uniform(0.05, 0.95, size=(200, 3)).astype(np.float32)
    model = GaussianHeadModel.from_points(TINY, points, landmarks, colors=colors)
    n_mouth = TINY.num_mouth_points
    assert model.num_gaussians == 200 + n_mouth

    with torch.no_grad():
        np.testing.assert_allclose(model.positions[:200].numpy(), points)
        np.testing.assert_allclose(torch.tanh(model.features[:200, :3]).numpy(), 2 * colors - 1, atol=1e-5)
        assert model.features[200:].eq(0).all()
        torch.testing.assert_close(torch.sigmoid(model.opacity_logits), torch.full((model.num_gaussians, 1), 0.3))
        assert model.rotations.eq(torch.tensor([1.0, 0, 0, 0])).all()
        np.testing.assert_allclose(model.landmarks.numpy(), landmarks)

        # Mouth box, written out: centred on the mouth landmarks, at their deepest z, side 1.6x spread.
        mouth = landmarks[48:68].astype(np.float64)
        center = mouth.mean(0)
        center[2] = mouth[:, 2].max()
        half = 0.8 * np.abs(mouth - center).max(0)
        added = model.positions[200:].numpy()
        assert (np.abs(added - center) <= half + 1e-6).all()
        assert (np.abs(added - center).max(0) > 0.9 * half).all()  # it fills the box

        # Scales: RMS distance to the 3 nearest other points, by brute force.
        all_pts = model.positions.numpy().astype(np.float64)
        dist = np.linalg.norm(all_pts[:, None] - all_pts[None], axis=2)
        np.fill_diagonal(dist, np.inf)
        nearest3 = np.sort(dist, axis=1)[:, :3]
        expected = np.sqrt((nearest3 ** 2).mean(1))
        scales = torch.exp(model.log_scales).numpy()
        np.testing.assert_allclose(scales, np.repeat(expected[:, None], 3, 1), rtol=1e-5)


def test_initialisation_on_the_ict_head(shared_data):
    from tracking.face_model import load_face_model_data

    data = load_face_model_data(shared_data / "ict_face_model.npz")
    surface = np.concatenate([data.neutral[data.region("face")], data.neutral[data.region("head_neck")]])
    points = surface[::6]
    landmarks = data.neutral[data.landmarks68]
    model = GaussianHeadModel.from_points(TINY, points, landmarks)
    with torch.no_grad():
        lam = model.blend()[0][: len(points), 0].numpy()
    # On the real head: the face is expression-driven, the back of the head pose-driven.
    assert lam[np.argmax(points[:, 2])] == 0  # the canonical face looks along -z
    near_landmark = np.linalg.norm(points[:, None] - landmarks[None], axis=2).min(1) < 0.05
    assert near_landmark.sum() > 20 and (lam[near_landmark] == 1).all()
    assert 0.1 < (lam == 0).mean() < 0.9
    # The mouth points sit between the mouth corners and behind the lips.
    mouth_pts = model.positions[len(points):].detach().numpy()
    corners_x = sorted([landmarks[48, 0], landmarks[54, 0]])
    assert corners_x[0] < np.median(mouth_pts[:, 0]) < corners_x[1]
    assert np.median(mouth_pts[:, 2]) > landmarks[48:68, 2].mean()


def test_skipping_unblended_gaussians_changes_nothing():
    """The training path that runs each MLP only where its λ is non-zero gives the dense path's
    outputs and gradients (the dense path is the reference: every MLP on every Gaussian)."""
    model = random_model()
    lam_exp, lam_pose = model.blend()
    assert 0 < int((lam_exp == 0).sum()) < model.num_gaussians  # both kinds of Gaussian present
    assert 0 < int((lam_pose == 0).sum()) < model.num_gaussians
    expression, pose = torch.rand(53, dtype=torch.float64), torch.tensor([0.1, 0.2, -0.1, 0.0, 0.1, 3.0])
    grads = []
    for skip in (False, True):
        model.zero_grad()
        out = model.forward_tensors(expression, pose, skip_unblended=skip)
        sum((o * torch.linspace(0.5, 1.5, o.numel(), dtype=o.dtype).reshape(o.shape)).sum() for o in out).backward()
        grads.append(([o.detach() for o in out], [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    for a, b in zip(grads[0][0] + grads[0][1], grads[1][0] + grads[1][1]):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-9)
