"""Training profiles `cpu`, `tiny`, `small`, `full` in one place: model sizes and Gaussian-stage rates come
from avatar.config's profiles (read, not copied); this adds the mesh stage (seed 2.1) and the
schedule of the Gaussian stage (seed 2.2).

Rates. The Adam rates of DESIGN.md (TrainingConfig) are the reference's, tuned for hundreds of
thousands of steps. `tiny` runs a few thousand steps on a CPU, so its Gaussian-stage rates are
multiplied by `lr_scale` (the ratios between groups stay the reference's).

`cpu`, the recipe for a 2-core CPU in under an hour (BENCHMARKS.md has each choice's effect):
3D Gaussian Splatting's rates on the Gaussians (avatar.config) decaying to a tenth; a 128 px
render and a residual x2 SR to 256 px; f_def^exp started from the tracked 3DMM's blendshapes and
colours read from the frames (avatar.face_model_prior); a mask loss on the outline; a mesh stage
in a box that reaches the shoulders; every training frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from avatar.config import Profile, get_profile


@dataclass(frozen=True)
class MeshStageConfig:
    resolution: int = 128  # side of the mesh-stage render
    grid_resolution: int = 48  # tet grid cells along the longest side of the head box
    box_margin: float = 0.15  # the grid box: the 3DMM head's bounding box grown by this (units)
    sdf_hidden: tuple[int, ...] = (128, 128, 128)
    max_offset: float = 0.25  # DMTet vertex offsets, in grid cells
    init_steps: int = 300  # fitting the SDF to the 3DMM head's ellipsoid before the images
    steps: int = 2000
    lr: float = 1e-3  # SDF, deformation and colour MLPs
    lr_landmarks: float = 1e-4  # P0
    lambda_sil: float = 1.0
    lambda_def: float = 1.0
    lambda_offset: float = 0.1
    lambda_lmk: float = 1.0
    lambda_lap: float = 100.0


@dataclass(frozen=True)
class GaussianStageConfig:
    steps: int = 20_000
    lr_scale: float = 1.0
    lr_final: float = 1.0  # every rate decays exponentially to this fraction of itself by the last step
    frames_per_step: int = 1  # frames rendered and averaged per Adam step
    # Initialisation before the first step (avatar.face_model_prior); 0 turns each off.
    deform_prior_steps: int = 0  # fit f_def^exp to the tracked 3DMM's blendshapes
    deform_prior_batch: int = 2048
    deform_prior_lr: float = 5e-3
    color_init_frames: int = 0  # training frames the Gaussians' colours are read from
    color_init_steps: int = 300  # fitting F0 and the colour MLPs to those colours
    lambda_vgg: float = 0.1
    lambda_lr: float = 0.5
    # L1 of the render's alpha against the segmentation mask (not in the seed): the outline of
    # hair and neck is where a short run's error is, and the mask says where it is directly.
    lambda_mask: float = 0.0
    augment_zoom: float = 1.2  # random zoom in [1, augment_zoom] with a random crop, 1 = off
    checkpoint_every: int = 1000
    preview_every: int = 500
    log_every: int = 50


@dataclass(frozen=True)
class TrainProfile:
    name: str
    base: Profile  # avatar.config profile: ModelConfig + TrainingConfig
    mesh: MeshStageConfig = field(default_factory=MeshStageConfig)
    gaussian: GaussianStageConfig = field(default_factory=GaussianStageConfig)
    max_train_frames: int | None = None  # evenly subsample the training frames (memory and load time)
    image_cache_size: int | None = None  # side the ground truth is kept at (default 4x the render)

    @property
    def render_resolution(self) -> int:
        return self.base.training.resolution


TRAIN_PROFILES: dict[str, TrainProfile] = {
    "tiny": TrainProfile(
        "tiny", get_profile("tiny"),
        MeshStageConfig(resolution=64, grid_resolution=20, sdf_hidden=(64, 64), init_steps=200, steps=800,
                        lr=3e-3, lr_landmarks=3e-4, lambda_sil=2.0),
        GaussianStageConfig(steps=3000, lr_scale=20.0, checkpoint_every=500, preview_every=500, log_every=25),
        max_train_frames=300),
    "cpu": TrainProfile(
        "cpu", get_profile("cpu"),
        MeshStageConfig(resolution=64, grid_resolution=28, box_margin=0.3, sdf_hidden=(64, 64), init_steps=200,
                        steps=800, lr=3e-3, lr_landmarks=3e-4, lambda_sil=2.0),
        GaussianStageConfig(steps=5000, lr_final=0.1, lambda_mask=1.0, deform_prior_steps=1500,
                            color_init_frames=24, checkpoint_every=500, preview_every=1000, log_every=25)),
    "small": TrainProfile(
        "small", get_profile("small"),
        MeshStageConfig(resolution=128, grid_resolution=40, sdf_hidden=(128, 128, 128), steps=2000),
        GaussianStageConfig(steps=30_000, lr_scale=3.0, checkpoint_every=2000, preview_every=1000)),
    "full": TrainProfile(
        "full", get_profile("full"),
        MeshStageConfig(resolution=256, grid_resolution=96, sdf_hidden=(256, 256, 256, 256), steps=10_000),
        GaussianStageConfig(steps=200_000, checkpoint_every=5000, preview_every=2000)),
}


def get_train_profile(name: str) -> TrainProfile:
    try:
        return TRAIN_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(TRAIN_PROFILES)}") from None
