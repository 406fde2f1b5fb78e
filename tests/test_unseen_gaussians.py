"""Dropping the Gaussians that only the padding past the video's frame shows
(avatar.unseen_gaussians, GaussianHeadModel.subset)."""
import numpy as np
import pytest
import torch

from avatar.head_model import GaussianHeadModel
from avatar.training_data import TrainingData
from avatar.unseen_gaussians import seen_in_frame
from tests.training_fixtures import micro_profile

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(n: int, seed: int) -> GaussianHeadModel:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    points = 0.3 * torch.rand(n, 3, generator=gen) - 0.15
    return GaussianHeadModel.from_points(micro_profile().model, points, 0.3 * torch.randn(68, 3, generator=gen))


def _data(frames: int, size: int, window: torch.Tensor | None) -> TrainingData:
    gen = torch.Generator().manual_seed(1)
    K = torch.tensor([[float(size), 0, size / 2], [0, float(size), size / 2], [0, 0, 1]])
    pose = torch.cat([0.1 * torch.randn(frames, 3, generator=gen), torch.tensor([[0.0, 0.0, 2.0]]).expand(frames, -1)
                      + 0.05 * torch.randn(frames, 3, generator=gen)], 1)
    return TrainingData(np.arange(frames), torch.zeros(frames, size, size, 3, dtype=torch.uint8),
                        torch.zeros(frames, size, size, dtype=torch.uint8), 0.2 * torch.rand(frames, 53, generator=gen),
                        pose, torch.zeros(frames, 68, 3), K.expand(frames, -1, -1), torch.eye(4).expand(frames, -1, -1),
                        dataset_size=size, image_size=size, window=window)


def test_a_subset_is_those_gaussians_of_the_whole_model():
    model = _model(120, seed=2)
    keep = torch.rand(model.num_gaussians, generator=torch.Generator().manual_seed(3)) < 0.5
    part = model.subset(keep)
    assert part.num_gaussians == int(keep.sum())
    expression, pose = 0.3 * torch.rand(53), torch.tensor([0.1, -0.2, 0.05, 0.01, 0.02, 2.0])
    with torch.no_grad():
        whole, some = model(expression, pose), part(expression, pose)
    for name in ("means", "quats", "scales", "opacities", "features"):
        assert torch.allclose(getattr(some, name), getattr(whole, name)[keep], atol=1e-6), name


def test_seen_in_frame_keeps_the_gaussians_some_view_puts_inside_the_video():
    size = 32
    model = _model(300, seed=4)
    window = torch.ones(size, size)
    window[:, : size // 2] = 0.0  # the left half of the crop is padding
    data = _data(12, size, window)
    seen = seen_in_frame(model, data, size, views=12)
    # Reference: project every posed centre with numpy and look the window up, frame by frame.
    expected = np.zeros(model.num_gaussians, bool)
    for j in range(len(data)):
        with torch.no_grad():
            means = model(data.expression[j], data.pose[j]).means.double().numpy()
        uv = means @ data.K[j].double().numpy().T
        u, v = uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2]
        ok = (u >= 0) & (u < size) & (v >= 0) & (v < size)
        row, col = np.clip(v, 0, size - 1).astype(int), np.clip(u, 0, size - 1).astype(int)
        expected |= ok & (window.numpy()[row, col] >= 0.5)
    assert 0 < expected.sum() < model.num_gaussians  # some on each side, so the check means something
    assert np.array_equal(seen.numpy(), expected)
    assert seen_in_frame(model, _data(12, size, None), size).all()  # no window: nothing is dropped
