"""The coefficient contract between tracking and avatar (see DESIGN.md)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTRACT_VERSION = 1

N_EXPRESSION = 53
N_IDENTITY = 100
N_LANDMARKS = 68

# ICT-FaceKit blendshape order, as stored in ict_face_model.npz.
EXPRESSION_NAMES: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L",
    "browOuterUp_R", "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R",
    "eyeBlink_L", "eyeBlink_R", "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L",
    "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R",
    "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R", "mouthFrown_L",
    "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R",
    "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R",
    "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L",
    "noseSneer_R",
)
assert len(EXPRESSION_NAMES) == N_EXPRESSION


def expression_index(name: str) -> int:
    return EXPRESSION_NAMES.index(name)


@dataclass
class FaceParams:
    """One frame of driving signal.

    rotation is axis-angle (radians) taking the canonical head to the camera; translation is in
    canonical units (see tracking.face_model: the head is about one unit long, OpenCV axes).
    """

    expression: np.ndarray  # (53,) float32, nominally 0..1
    rotation: np.ndarray  # (3,) float32
    translation: np.ndarray  # (3,) float32
    identity: np.ndarray  # (100,) float32
    landmarks3d: np.ndarray  # (68, 3) float32

    def __post_init__(self) -> None:
        shapes = {
            "expression": (N_EXPRESSION,),
            "rotation": (3,),
            "translation": (3,),
            "identity": (N_IDENTITY,),
            "landmarks3d": (N_LANDMARKS, 3),
        }
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name), dtype=np.float32)
            if value.shape != shape:
                raise ValueError(f"FaceParams.{name} must have shape {shape}, got {value.shape}")
            setattr(self, name, value)

    @classmethod
    def neutral(cls, identity: np.ndarray | None = None) -> "FaceParams":
        return cls(
            expression=np.zeros(N_EXPRESSION, np.float32),
            rotation=np.zeros(3, np.float32),
            translation=np.zeros(3, np.float32),
            identity=np.zeros(N_IDENTITY, np.float32) if identity is None else identity,
            landmarks3d=np.zeros((N_LANDMARKS, 3), np.float32),
        )
