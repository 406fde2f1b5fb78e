"""One Gaussian-stage step (avatar.train_gaussians.train_step): several frames per step average
their gradients, they do not add them; the padding past the video's frame teaches nothing; the
deformation prior term trains f_def^exp; a wrong setting fails when the config is made."""
import numpy as np
import pytest
import torch

from avatar.deformation_fit import DeformationPriorLoss, random_expressions
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


def _gradients(frames_per_step: int, data_change=None) -> tuple[list[torch.Tensor], dict[str, float]]:
    stage, data = _stage_and_data(4)
    if data_change is not None:
        data_change(data)
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


def test_the_padding_past_the_videos_frame_teaches_nothing():
    """With the left half of every frame outside the video (frame window 0 there), what the ground
    truth holds in that half does not change a gradient; without the window it does."""
    def left_half_out(data):
        size = data.image_size
        data.window = torch.ones(size, size)
        data.window[:, : size // 2] = 0.0

    def other_left_half(data):
        size = data.image_size
        data.images = data.images.clone()
        data.images[:, :, : size // 2] = torch.randint(0, 256, (size, size // 2, 3),
                                                        generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
        data.masks = data.masks.clone()
        data.masks[:, :, : size // 2] = 0

    def both(data):
        left_half_out(data)
        other_left_half(data)

    cut, _ = _gradients(1, left_half_out)
    cut_other, _ = _gradients(1, both)
    plain, _ = _gradients(1)
    plain_other, _ = _gradients(1, other_left_half)
    assert len(cut) == len(cut_other) == len(plain) == len(plain_other) > 0
    for a, b in zip(cut, cut_other):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7 * float(a.abs().max()) + 1e-12)
    assert any(not torch.allclose(a, b, rtol=1e-2) for a, b in zip(plain, plain_other))


class _LinearTarget:
    """A DeformationTarget: points move linearly with the expression, each channel by a random
    linear field of the rest position (smooth, so a small MLP can follow it)."""

    def __init__(self, points: torch.Tensor, seed: int) -> None:
        self.points = points.detach().numpy()
        fields = 0.1 * torch.randn(53, 3, 3, generator=torch.Generator().manual_seed(seed))
        self.basis = torch.einsum("kij,nj->kni", fields, points.detach())

    def deformed(self, expression: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        rest = torch.as_tensor(self.points)
        if index is None:
            return rest + torch.einsum("bk,knc->bnc", expression, self.basis)
        return rest[index] + torch.einsum("bk,bmkc->bmc", expression, self.basis.permute(1, 0, 2)[index])


def test_the_deformation_prior_term_pulls_f_def_exp_towards_its_target():
    """With λ_prior on, training steps (image loss included) bring f_def^exp's offsets closer to
    the target's on held-back random expressions, the step reports the term, and with λ_prior 0
    the same steps do not."""
    def prior_error(lam: float) -> tuple[float, float, dict]:
        stage, data = _stage_and_data(2)
        stage.model.pose_deform_mlp.zero_output()
        for group in stage.optimizer.param_groups:
            group["initial_lr"] *= 30  # the micro profile's rates are for 6 steps, not 300
        blended = stage.model.blend()[0][:, 0].detach() > 0.5  # points f_def^exp moves (mostly)
        stage.deform_prior = DeformationPriorLoss(_LinearTarget(stage.model.positions, seed=1))
        gen = torch.Generator().manual_seed(7)
        check = random_expressions(32, gen)

        def error() -> float:
            with torch.no_grad():
                offsets = torch.stack([stage.model.deformation(e, torch.zeros(6)).offset for e in check])
                target = stage.deform_prior.surface.deformed(check) - stage.deform_prior.rest
            return float((offsets - target).norm(dim=-1)[:, blended].mean())

        before = error()
        config = GaussianStageConfig(steps=300, augment_zoom=1.0, lambda_deform_prior=lam, deform_prior_batch=512)
        for _ in range(300):
            losses = train_step(stage, data, micro_profile().render_resolution, config, "cpu", None)
        return before, error(), losses

    before, after, losses = prior_error(10.0)
    print(f"f_def^exp error: {before:.4f} -> {after:.4f} with the prior")
    assert "prior" in losses and after < 0.7 * before, (before, after)
    before_off, after_off, losses_off = prior_error(0.0)
    print(f"f_def^exp error: {before_off:.4f} -> {after_off:.4f} without")
    assert "prior" not in losses_off and after_off > 0.9 * before_off, (before_off, after_off)


@pytest.mark.parametrize("field, value, message", [
    ("photometric_loss", "l3", "photometric_loss must be one of l1, l2"),
    ("frames_per_step", 0, "frames_per_step must be at least 1"),
])
def test_a_wrong_gaussian_stage_setting_fails_when_the_profile_is_built(field, value, message):
    with pytest.raises(ValueError, match=message):
        GaussianStageConfig(**{field: value})
