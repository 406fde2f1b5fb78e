"""Every knob of the 3DMM fitter in one place (see tracking/fitter.py for how each is used).

Costs are dimensionless: 2D residuals are divided by the observed face size (RMS spread of the
detected points around their centroid) and averaged over points, so a residual of 0.01 is 1 % of
the face size whatever the resolution. Regulariser weights are on that same scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from tracking.landmarks.base import IBUG_68
from tracking.params import EXPRESSION_NAMES


@dataclass(frozen=True)
class FitConfig:
    fov_deg: float = 60.0  # diagonal field of view of the assumed pinhole (tracking/pinhole.py)

    # Per-frame fit: Levenberg-Marquardt on (rotation, translation, expression), identity fixed.
    frame_iterations: int = 4  # warm-started from the previous frame
    cold_iterations: int = 20  # first frame, or after the face was lost
    expression_prior: float = 2e-5  # L2 weight pulling every expression weight to 0
    # Channels whose prior differs from expression_prior (name -> weight).
    expression_prior_overrides: dict[str, float] = field(default_factory=dict)
    temporal_prior: float = 1e-5  # L2 weight pulling expression towards the previous frame's
    frozen_expressions: tuple[str, ...] = ()  # channels held at 0 (not observable from landmarks)
    robust_scale: float = 0.03  # Huber threshold on a point's residual, in face sizes

    # Identity: fitted once per person, jointly over several spread-out frames.
    identity_frames: int = 8
    identity_iterations: int = 30
    identity_prior: float = 1e-5  # L2 weight on the identity coefficients (unit-variance PCA modes)
    identity_expression_prior_scale: float = 30.0  # expression prior x this while the identity is solved

    initial_damping: float = 1e-3  # LM damping, relative to the diagonal of the normal matrix

    def __post_init__(self) -> None:
        unknown = [n for n in (*self.expression_prior_overrides, *self.frozen_expressions)
                   if n not in EXPRESSION_NAMES]
        if unknown:
            raise ValueError(f"unknown expression names in fit config: {unknown}")
        if self.frame_iterations < 1 or self.cold_iterations < 1 or self.identity_iterations < 1:
            raise ValueError("fit iteration counts must be at least 1")
        if self.identity_frames < 1:
            raise ValueError("identity_frames must be at least 1")
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"field of view must be within [1, 170] degrees, got {self.fov_deg}")

    def expression_prior_weights(self) -> list[float]:
        return [self.expression_prior_overrides.get(n, self.expression_prior) for n in EXPRESSION_NAMES]


# Channels 68 iBUG points cannot see: no point on the cheeks, none on the pupils.
NOT_SEEN_BY_68 = tuple(n for n in EXPRESSION_NAMES if n.startswith(("cheekPuff", "eyeLook")))


def fit_config_for(scheme: str, **changes) -> FitConfig:
    """The fitter's settings for a detector's point scheme. 68 sparse points pin the face shape
    down far less than MediaPipe's few hundred: with the default identity prior the identity
    absorbs a mouth that is open in most frames (on d0 jawOpen then fell as the mouth opened), so
    it is 10x stronger there, and the channels no point sees are held at 0."""
    config = FitConfig(**changes)
    if scheme == IBUG_68:
        config = replace(config, identity_prior=10 * config.identity_prior,
                         frozen_expressions=tuple(dict.fromkeys(config.frozen_expressions + NOT_SEEN_BY_68)))
    return config
