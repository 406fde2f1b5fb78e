"""One Gaussian-stage step (avatar.train_gaussians.train_step): several frames per step average
their gradients, they do not add them."""
import numpy as np
import pytest
import torch

from avatar.head_model import GaussianHeadModel
from avatar.super_resolution import SuperResolution
from avatar.train_config import GaussianStageConfig
from avatar.train_gaussians import GaussianStage, train_step
from avatar.training_data import TrainingData
from tests.training_fixtures import micro_profile

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _stage_and_data(frames: int) -> tuple[GaussianStage, TrainingData]:
    profile = micro_profile()
    torch.manual_seed(0)  # the MLPs and the SR CNN are initialised from the global generator
    gen = torch.Generator().manual_seed(0)
    points = 0.3 * torch.randn(200, 3, generator=gen)
    model = GaussianHeadModel.from_points(profile.model, points, 0.3 * torch.randn(68, 3, generator=gen))
    sr = SuperResolution.from_config(profile.model)
    size = profile.render_resolution * sr.factor
    # Every frame is the same image, expression and pose: the mean over frames is one frame's value.
    image = torch.randint(0, 256, (1, size, size, 3), generator=gen, dtype=torch.uint8).expand(frames, -1, -1, -1)
    K = torch.tensor([[float(size), 0, size / 2], [0, float(size), size / 2], [0, 0, 1]])
    data = TrainingData(np.arange(frames), image.contiguous(), torch.full((frames, size, size), 255, dtype=torch.uint8),
                        torch.full((frames, 53), 0.1), torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 2.0]]).expand(frames, -1),
                        torch.zeros(frames, 68, 3), K.expand(frames, -1, -1), torch.eye(4).expand(frames, -1, -1),
                        dataset_size=size, image_size=size)
    return GaussianStage.create(model, sr, frames, profile.training, 1.0), data


def _gradients(frames_per_step: int) -> tuple[list[torch.Tensor], dict[str, float]]:
    stage, data = _stage_and_data(4)
    config = GaussianStageConfig(steps=1, frames_per_step=frames_per_step, lambda_mask=1.0, augment_zoom=1.0)
    losses = train_step(stage, data, micro_profile().render_resolution, config, "cpu", None)
    return [p.grad.clone() for p in stage.model.parameters() if p.grad is not None], losses


def test_frames_per_step_averages_the_frames_gradients():
    one, losses_one = _gradients(1)
    three, losses_three = _gradients(3)
    assert len(one) == len(three) > 0
    for a, b in zip(one, three):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7 * float(a.abs().max()) + 1e-12)
    assert losses_three["total"] == pytest.approx(losses_one["total"], rel=1e-5)
