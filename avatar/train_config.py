"""The two training stages' settings: the mesh stage (seed 2.1) and the Gaussian stage's schedule
(seed 2.2). The named profiles that choose them are in avatar.profiles.
"""
from __future__ import annotations

from dataclasses import dataclass

from avatar.losses import PHOTOMETRIC


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
    # Wall-clock budget of the Gaussian stage in minutes, 0 = none: the schedule then runs on the
    # larger of the steps' and the time's share, and the stage ends at whichever comes first, so
    # a slower machine trains fewer steps instead of for longer.
    minutes: float = 0.0
    lr_scale: float = 1.0
    lr_final: float = 1.0  # every rate decays exponentially to this fraction of itself by the end
    frames_per_step: int = 1  # frames rendered and averaged per Adam step
    # Initialisation before the first step (avatar.face_model_prior); 0 turns each off.
    deform_prior_steps: int = 0  # fit f_def^exp to the tracked 3DMM's blendshapes
    deform_prior_batch: int = 2048
    deform_prior_lr: float = 5e-3
    eyelid_points: int = 0  # extra Gaussians on the tracked 3DMM's eyelids
    # Kept during training: λ times the f_def^exp fit's loss on `deform_prior_batch` points for
    # random expressions, so that motions the video rarely shows (a full blink) stay the 3DMM's.
    lambda_deform_prior: float = 0.0
    color_init_frames: int = 0  # training frames the Gaussians' colours are read from
    color_init_steps: int = 300  # fitting F0 and the colour MLPs to those colours
    # "l1" (the seed) or "l2" (losses.scaled_squared) for the image and mask terms: PSNR is a
    # squared error, and where the outline is unpredictable L1 learns the median, L2 the mean.
    photometric_loss: str = "l1"
    lambda_vgg: float = 0.1
    lambda_lr: float = 0.5
    # `photometric_loss` of the render's alpha against the segmentation mask (not in the seed):
    # the outline of hair and neck is where a short run's error is, and the mask says where it is.
    lambda_mask: float = 0.0
    augment_zoom: float = 1.2  # random zoom in [1, augment_zoom] with a random crop, 1 = off
    checkpoint_every: int = 1000
    preview_every: int = 500
    log_every: int = 50

    def __post_init__(self) -> None:
        # Checked here, not at the first step, so a wrong profile fails before minutes of set-up.
        if self.photometric_loss not in PHOTOMETRIC:
            raise ValueError(f"photometric_loss must be one of {', '.join(PHOTOMETRIC)}, "
                             f"got {self.photometric_loss!r}")
        if self.frames_per_step < 1:
            raise ValueError(f"frames_per_step must be at least 1, got {self.frames_per_step}")
