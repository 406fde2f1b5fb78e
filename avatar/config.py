"""Configuration of the Gaussian head avatar: model sizes and Gaussian-stage rates.

The defaults are the published Gaussian Head Avatar configuration (DESIGN.md "The avatar"); the
named profiles built from them are in avatar.profiles.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from tracking.params import N_EXPRESSION

BLEND_KINDS = ("linear", "smooth")
ATTRIBUTE_DIM = 8  # rotation delta (4) + log-scale delta (3) + opacity-logit delta (1)
POSE_DIM = 6  # axis-angle (3) + translation (3)


def encoded_dim(dim: int, num_freqs: int) -> int:
    """Width of the positional encoding γ of a `dim`-vector: the input plus sin and cos per frequency."""
    return dim * (1 + 2 * num_freqs)


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and constants of `GaussianHeadModel` and `SuperResolution`.

    Hidden widths exclude the input and output layers, which follow from the other fields.
    Distances are in canonical units (the head is about one unit long, see tracking.face_model).
    """

    name: str = "full"
    feature_dim: int = 128  # F0 width
    color_channels: int = 32  # rendered feature channels; the first three are low-resolution RGB
    exp_color_hidden: tuple[int, ...] = (256, 256)
    pose_color_hidden: tuple[int, ...] = (128,)
    exp_attributes_hidden: tuple[int, ...] = (256, 256, 256)
    pose_attributes_hidden: tuple[int, ...] = (128, 128)
    exp_deform_hidden: tuple[int, ...] = (256, 256, 256, 256, 256)
    pose_deform_hidden: tuple[int, ...] = (256, 256)
    pos_freqs: int = 4
    deform_scale: float = 0.3
    attributes_scale: float = 0.2
    blend_near: float = 0.1  # t1: λ_exp = 1 closer than this to the nearest neutral landmark
    blend_far: float = 0.25  # t2: λ_exp = 0 farther than this
    blend_kind: str = "linear"
    # False: t1, t2 are plain distances (see avatar.blend for why this is the default).
    squared_distance: bool = False
    # The torso (not in the seed's model, avatar.pose_transform.torso_pose_transform): Gaussians
    # from torso_near to torso_far below the chin (canonical y) turn from the frame's head
    # rotation to the avatar's rest rotation, so the shoulders stay put when the head turns.
    # 0 and 0: every Gaussian turns with the head, as in the seed.
    torso_near: float = 0.0
    torso_far: float = 0.0
    num_points: int = 100_000  # Gaussians taken from the initial surface
    num_mouth_points: int = 3000  # extra Gaussians in a box around the mouth landmarks
    sr_channels: int = 32  # c of the super-resolution CNN (stem 4c, stages 2c and c)
    sr_factor: int = 4  # output side / render side: 4 (reference), 2 or 1
    sr_residual: bool = False  # SR corrects the upsampled render's RGB (avatar.super_resolution)

    def __post_init__(self) -> None:
        positive = ["feature_dim", "color_channels", "pos_freqs", "sr_channels"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.color_channels < 3:
            raise ValueError(f"ModelConfig.color_channels must be >= 3 (RGB first), got {self.color_channels}")
        for f in fields(self):
            if f.name.endswith("_hidden"):
                widths = getattr(self, f.name)
                if not widths or any(int(w) < 1 for w in widths):
                    raise ValueError(f"ModelConfig.{f.name} must be a non-empty list of widths >= 1, got {widths}")
        if not 0 <= self.blend_near < self.blend_far:
            raise ValueError(f"ModelConfig needs 0 <= blend_near < blend_far, got {self.blend_near}, {self.blend_far}")
        if self.torso_far != 0 or self.torso_near != 0:
            if not 0 <= self.torso_near < self.torso_far:
                raise ValueError("ModelConfig needs 0 <= torso_near < torso_far (or both 0: no torso), "
                                 f"got {self.torso_near}, {self.torso_far}")
        if self.blend_kind not in BLEND_KINDS:
            raise ValueError(f"ModelConfig.blend_kind must be one of {BLEND_KINDS}, got {self.blend_kind!r}")
        if self.sr_factor not in (1, 2, 4):
            raise ValueError(f"ModelConfig.sr_factor must be 1, 2 or 4, got {self.sr_factor}")
        if self.num_points < 1 or self.num_mouth_points < 0:
            raise ValueError("ModelConfig needs num_points >= 1 and num_mouth_points >= 0")

    @property
    def has_torso(self) -> bool:
        return self.torso_far > 0

    def mlp_dims(self) -> dict[str, list[int]]:
        """Layer widths (input first, output last) of the six MLPs, as in the reference config."""
        theta = N_EXPRESSION
        beta = encoded_dim(POSE_DIM, self.pos_freqs)
        x = encoded_dim(3, self.pos_freqs)
        f = self.feature_dim
        return {
            "exp_color": [f + theta, *self.exp_color_hidden, self.color_channels],
            "pose_color": [f + beta, *self.pose_color_hidden, self.color_channels],
            "exp_attributes": [f + theta, *self.exp_attributes_hidden, ATTRIBUTE_DIM],
            "pose_attributes": [f + beta, *self.pose_attributes_hidden, ATTRIBUTE_DIM],
            "exp_deform": [x + theta, *self.exp_deform_hidden, 3],
            "pose_deform": [x + beta, *self.pose_deform_hidden, 3],
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: Any) -> "ModelConfig":
        """Inverse of to_dict; unknown or mistyped entries raise ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"model config must be an object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"model config has unknown entries {unknown}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            default = known[name].default
            if isinstance(default, tuple):
                if not isinstance(value, list) or not all(type(v) is int for v in value):
                    raise ValueError(f"model config {name} must be a list of integers, got {value!r}")
                value = tuple(value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"model config {name} must be true or false, got {value!r}")
            elif isinstance(default, int):
                if type(value) is not int:
                    raise ValueError(f"model config {name} must be an integer, got {value!r}")
            elif isinstance(default, float):
                if type(value) not in (int, float):
                    raise ValueError(f"model config {name} must be a number, got {value!r}")
                value = float(value)
            elif not isinstance(value, str):
                raise ValueError(f"model config {name} must be a string, got {value!r}")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class TrainingConfig:
    """Adam learning rates of the Gaussian stage (DESIGN.md) and the low-resolution render size.

    The neutral landmarks P0 have no rate: as in the reference they are fitted during the
    geometry-guided initialisation and frozen in the Gaussian stage.
    """

    lr_mlp: float = 1e-4
    # f_def^pose and f_att^pose; None: lr_mlp. 0 keeps them at zero output (set at the start of the
    # Gaussian stage): conditioned on the encoded pose, which is nearly unique per frame, they can
    # memorise the training frames' outlines instead of learning the head.
    lr_pose_mlp: float | None = None
    lr_sr: float = 1e-4
    lr_position: float = 1e-5
    lr_feature: float = 1e-5
    lr_rotation: float = 1e-5
    lr_pose_offset: float = 1e-5
    lr_scale: float = 3e-5
    lr_opacity: float = 1e-4
    resolution: int = 512  # side of the 32-channel render; the SR output is 4x this
