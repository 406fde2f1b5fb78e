"""The coefficient sequence file written by `splatcam track` (DESIGN.md, fixed interface).

An .npz (no pickled objects) with
    expression (T, 53) float32, rotation (T, 3) float32, translation (T, 3) float32,
    identity (100,) float32, valid (T,) bool, fps () float64, expression_names (53,) str.
Frames with valid False had no face: their values repeat the last valid frame (the first valid
one for leading misses; zeros when no frame has a face) so that every array stays finite.
`read_params` checks all of it and raises ValueError (FileNotFoundError for a missing file) with
a one-line message naming the file and the problem.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracking.npz_file import write_npz_atomic
from tracking.params import EXPRESSION_NAMES, N_EXPRESSION, N_IDENTITY

REQUIRED = ("expression", "rotation", "translation", "identity", "valid", "fps", "expression_names")


@dataclass
class ParamsSequence:
    expression: np.ndarray  # (T, 53) float32
    rotation: np.ndarray  # (T, 3) float32
    translation: np.ndarray  # (T, 3) float32
    identity: np.ndarray  # (100,) float32
    valid: np.ndarray  # (T,) bool
    fps: float

    def __post_init__(self) -> None:
        self.expression = np.asarray(self.expression, np.float32)
        self.rotation = np.asarray(self.rotation, np.float32)
        self.translation = np.asarray(self.translation, np.float32)
        self.identity = np.asarray(self.identity, np.float32)
        self.valid = np.asarray(self.valid, bool)
        self.fps = float(self.fps)
        problem = _problem(vars(self))
        if problem:
            raise ValueError(f"ParamsSequence: {problem}")

    @property
    def num_frames(self) -> int:
        return self.expression.shape[0]


def _problem(a: dict) -> str | None:
    """What is wrong with these arrays as a params sequence, or None."""
    t = a["expression"].shape[0] if a["expression"].ndim == 2 else None
    if t is None:
        return f"expression has shape {a['expression'].shape}, expected (T, {N_EXPRESSION})"
    for name, width in (("expression", N_EXPRESSION), ("rotation", 3), ("translation", 3)):
        if a[name].shape != (t, width):
            return f"{name} has shape {a[name].shape}, expected ({t}, {width})"
    if a["identity"].shape != (N_IDENTITY,):
        return f"identity has shape {a['identity'].shape}, expected ({N_IDENTITY},)"
    if a["valid"].shape != (t,):
        return f"valid has shape {a['valid'].shape}, expected ({t},)"
    for name in ("expression", "rotation", "translation", "identity"):
        if not np.isfinite(a[name]).all():
            return f"{name} contains NaN or inf"
    if not (np.isfinite(a["fps"]) and a["fps"] > 0):
        return f"fps must be a positive number, got {a['fps']}"
    return None


def write_params(path: str | os.PathLike, seq: ParamsSequence) -> None:
    """Write atomically (tracking/npz_file.py)."""
    write_npz_atomic(path, "params", expression=seq.expression, rotation=seq.rotation,
                     translation=seq.translation, identity=seq.identity, valid=seq.valid,
                     fps=np.float64(seq.fps), expression_names=np.array(EXPRESSION_NAMES))


def read_params(path: str | os.PathLike) -> ParamsSequence:
    """Read and validate a params file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such params file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as e:  # np.load raises several unrelated types for a damaged or foreign file
        raise ValueError(f"{path}: not a readable .npz params file ({' '.join(str(e).split())})") from None
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing} (expected the output of `splatcam track`)")
    for name in ("expression", "rotation", "translation", "identity", "fps"):
        if not np.issubdtype(arrays[name].dtype, np.number):
            raise ValueError(f"{path}: {name} has non-numeric dtype {arrays[name].dtype}")
    if arrays["valid"].dtype != bool:
        raise ValueError(f"{path}: valid has dtype {arrays['valid'].dtype}, expected bool")
    if arrays["fps"].shape != ():
        raise ValueError(f"{path}: fps has shape {arrays['fps'].shape}, expected a scalar")
    names = arrays["expression_names"]
    if names.shape != (N_EXPRESSION,) or tuple(str(n) for n in names) != EXPRESSION_NAMES:
        raise ValueError(f"{path}: expression_names differ from the ICT-FaceKit order this version uses")
    arrays["fps"] = float(arrays["fps"])
    problem = _problem(arrays)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return ParamsSequence(**{k: arrays[k] for k in REQUIRED if k != "expression_names"})
