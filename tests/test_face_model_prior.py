"""The starts a new avatar gets from the tracked face model (avatar.face_model_prior,
avatar.deformation_fit) and the alignment of another recording (avatar.recording_alignment)."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatar.camera import Camera
from avatar.deformation_fit import fit_expression_deformation, random_expressions
from avatar.face_model_prior import EYELID_JITTER, FOLLOW_FAR, eyelid_points, face_model_target, sample_colors
from avatar.gaussians import GaussianSet
from avatar.head_model import GaussianHeadModel
from avatar.profiles import get_profile
from avatar.recording_alignment import aligned_poses, kabsch, recording_alignment
from avatar.training_data import TrainingData
from core.rotations import axis_angle_to_matrix
from tracking.face_model import FaceModel, load_face_model_data
from tracking.params import EXPRESSION_NAMES


@pytest.fixture(scope="module")
def face_data(shared_data):
    return load_face_model_data(shared_data / "ict_face_model.npz")


def test_points_on_the_face_follow_the_3dmm(face_data):
    """A Gaussian on a face vertex moves exactly as the 3DMM moves that vertex; one far from the
    surface does not move."""
    rng = np.random.default_rng(0)
    identity = rng.normal(0, 1, 100).astype(np.float32)
    model = FaceModel.from_data(face_data)
    ids = rng.choice(np.arange(face_data.region("face").start, face_data.region("face").stop), 50, replace=False)
    expression = torch.rand(3, 53)
    with torch.no_grad():
        rest = model.vertices(torch.as_tensor(identity)[None], torch.zeros(1, 53))[0]
        moved = model.vertices(torch.as_tensor(identity)[None].expand(3, -1), expression)
    far = rest[ids[:5]] + torch.tensor([0.0, 0.0, -3 * FOLLOW_FAR])  # well in front of the face
    target = face_model_target(torch.cat([rest[ids], far]), identity, face_data)
    out = target.deformed(expression)
    assert torch.allclose(out[:, :50], moved[:, ids], atol=1e-5)
    assert torch.allclose(out[:, 50:], far.expand(3, -1, -1), atol=1e-6)
    sub = target.deformed(expression, torch.tensor([[3, 7], [0, 51], [9, 9]]))
    assert torch.allclose(sub, torch.stack([out[0, [3, 7]], out[1, [0, 51]], out[2, [9, 9]]]))


def test_fitting_the_deformation_mlp_to_the_3dmm(face_data, one_torch_thread):
    # The mannequin's deformation MLP (8 encoding frequencies, 3 x 128), which fits blendshapes well.
    config = replace(get_profile("tiny").model, blend_near=0.3, blend_far=0.5, pos_freqs=8,
                     exp_deform_hidden=(128, 128, 128))
    model_3dmm = FaceModel.from_data(face_data)
    identity = np.zeros(100, np.float32)
    with torch.no_grad():
        rest = model_3dmm.vertices(torch.zeros(1, 100), torch.zeros(1, 53))[0]
    face = np.arange(face_data.region("face").start, face_data.region("face").stop)[::20]
    points = rest[face]
    model = GaussianHeadModel.from_points(config, points, rest[face_data.landmarks68], seed=0)
    model.pose_deform_mlp.zero_output()  # only f_def^exp is fitted: the pose part must not move points
    target = face_model_target(model.positions, identity, face_data)
    expressions = random_expressions(32, torch.Generator().manual_seed(5))

    with torch.no_grad():
        motion = (target.deformed(expressions) - model.positions).norm(dim=-1)
    moving = motion > 0.01  # over 2.5 mm

    def error() -> float:
        """Mean error on the moving points, as a fraction of their mean motion."""
        with torch.no_grad():
            offsets = torch.stack([model.deformation(e, torch.zeros(6)).offset for e in expressions])
            err = (offsets - (target.deformed(expressions) - model.positions)).norm(dim=-1)
        return float(err[moving].mean() / motion[moving].mean())

    before = error()
    fit_expression_deformation(model, target, 400, 1024, 5e-3, torch.Generator().manual_seed(0))
    print(f"error / motion on moving points: {before:.3f} before, {error():.3f} after")
    assert error() < 0.5 * before and error() < 0.5


def test_sample_colors_reads_visible_gaussians_only():
    """Two layers of Gaussians in front of a camera: the front layer takes the colour of the pixel
    under each centre; the back layer, hidden by it, is not seen."""
    size = 32
    xs = torch.linspace(-0.3, 0.3, 8)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    front = torch.cat([grid, torch.full((64, 1), 2.0)], 1)
    back = torch.cat([grid, torch.full((64, 1), 2.5)], 1)
    means = torch.cat([front, back])
    n = means.shape[0]
    g = GaussianSet(means, torch.tensor([1.0, 0, 0, 0]).expand(n, 4), torch.full((n, 3), 0.05),
                    torch.full((n,), 0.99), torch.zeros(n, 3))
    camera = Camera(K=torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]), viewmat=torch.eye(4), width=size,
                    height=size)
    image = torch.randint(0, 256, (1, size, size, 3), dtype=torch.uint8)
    data = TrainingData(np.arange(1), image, torch.zeros(1, size, size, dtype=torch.uint8), torch.zeros(1, 53),
                        torch.zeros(1, 6), torch.zeros(1, 68, 3), camera.K[None], torch.eye(4)[None],
                        dataset_size=size, image_size=size)
    colors, seen = sample_colors([g], data, [0], size)
    uv = front @ camera.K.T
    u, v = (uv[:, 0] / uv[:, 2]).floor().long(), (uv[:, 1] / uv[:, 2]).floor().long()
    assert torch.equal(seen, torch.cat([torch.ones(64), torch.zeros(64)]))
    assert torch.allclose(colors[:64], image[0, v, u].float() / 255)


def test_kabsch_recovers_a_rigid_transform():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(40, 3))
    rot = Rotation.random(random_state=2)
    t = rng.normal(size=3)
    r, tr = kabsch(src, rot.apply(src) + t)
    assert np.allclose(r, rot.as_matrix(), atol=1e-9) and np.allclose(tr, t, atol=1e-9)


def test_aligned_poses_put_the_avatar_where_the_other_head_was(face_data):
    """Posing the avatar identity's head with the aligned pose lands it where the other recording's
    identity's head was posed by the original pose, up to the identities' shape difference."""
    rng = np.random.default_rng(3)
    mine = rng.normal(0, 1, 100).astype(np.float32)
    other = (mine + rng.normal(0, 0.5, 100)).astype(np.float32)
    alignment = recording_alignment(mine, other, face_data)
    model = FaceModel.from_data(face_data)
    face = slice(face_data.region("face").start, face_data.region("face").stop)
    with torch.no_grad():
        heads = [model.vertices(torch.as_tensor(i)[None], torch.zeros(1, 53))[0, face].double() for i in (mine, other)]
    pose = torch.tensor([[0.1, -0.2, 0.05, 0.01, -0.02, 2.0]], dtype=torch.float64)
    new = aligned_poses(pose, alignment)

    def posed(v, p):
        return v @ axis_angle_to_matrix(p[:, :3])[0].T + p[0, 3:]

    moved = posed(heads[0], new)
    residual = (heads[1].numpy() @ alignment[0].T + alignment[1]) - heads[0].numpy()  # shape difference
    expected = posed(heads[1], pose).numpy() - residual @ axis_angle_to_matrix(new[:, :3])[0].numpy().T
    assert np.abs(moved.numpy() - expected).max() < 1e-5
    assert np.allclose(aligned_poses(pose, (np.eye(3), np.zeros(3))), pose)


def test_eyelid_points_sit_on_the_lids_and_close_with_a_blink(face_data):
    """The extra eyelid Gaussians lie on the identity's lid surface (within their jitter), and the
    3DMM's blink moves each of them by a good part of the lids' largest blink motion, while a jaw
    opening leaves them almost still."""
    rng = np.random.default_rng(1)
    identity = rng.normal(0, 1, 100).astype(np.float32)
    points = eyelid_points(identity, 300, torch.Generator().manual_seed(0), face_data)
    assert points.shape == (300, 3)
    with torch.no_grad():
        rest = FaceModel.from_data(face_data).vertices(torch.as_tensor(identity)[None], torch.zeros(1, 53))[0]
    nearest = torch.cdist(points, rest).min(1).values
    assert float(nearest.max()) < 5 * EYELID_JITTER
    target = face_model_target(points, identity, face_data)
    names = list(EXPRESSION_NAMES)
    blink, jaw = torch.zeros(1, 53), torch.zeros(1, 53)
    blink[0, [names.index("eyeBlink_L"), names.index("eyeBlink_R")]] = 1.0
    jaw[0, names.index("jawOpen")] = 1.0
    largest = float(np.linalg.norm(face_data.expression_basis[[names.index("eyeBlink_L"),
                                                               names.index("eyeBlink_R")]], axis=-1).max())
    moved = (target.deformed(blink)[0] - points).norm(dim=-1)
    assert float(moved.median()) > 0.3 * largest
    assert float((target.deformed(jaw)[0] - points).norm(dim=-1).median()) < 0.1 * float(moved.median())
