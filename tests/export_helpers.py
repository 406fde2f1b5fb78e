"""A `tiny` avatar with random weights for the export and inference-backend tests."""
import numpy as np
import torch

from avatar.camera import Camera
from avatar.checkpoint import Avatar
from avatar.head_model import GaussianHeadModel
from avatar.profiles import get_profile
from avatar.super_resolution import SuperResolution


def random_tiny_avatar(n_points: int = 400, seed: int = 0, width: int = 20, height: int = 12,
                       profile: str = "tiny") -> Avatar:
    """Points and landmarks interleaved so λ_exp covers 0, 1 and the ramp between; every weight
    perturbed so no MLP output is trivially zero; a non-square camera to exercise H != W.
    `profile` gives the model sizes (`cpu`: the residual x2 SR)."""
    cfg = get_profile(profile).model
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = GaussianHeadModel.from_points(cfg, rng.normal(size=(n_points, 3)) * 0.3,
                                          rng.normal(size=(68, 3)) * 0.3, seed=seed)
    sr = SuperResolution.from_config(cfg)
    with torch.no_grad():
        for p in list(model.parameters()) + list(sr.parameters()):
            p.add_(torch.randn_like(p) * 0.1)
    camera = Camera.looking_at_origin(width, height)
    return Avatar(model.eval(), sr.eval(), camera, torch.zeros(3))
