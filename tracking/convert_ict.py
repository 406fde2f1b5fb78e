"""Convert the original ICT-FaceKit release (OBJ files) into `ict_face_model.npz`.

Input: the release's `FaceXModel/` folder (or the repository root holding it):
`generic_neutral_mesh.obj`, one OBJ per expression named like the shape (`jawOpen.obj`, ...),
`identity000.obj` ... `identity099.obj`, and `vertex_indices.json` (expression order, the 68
landmark vertices). Every OBJ is a whole mesh in the same 26,719-vertex topology; a mode is its
difference from the neutral mesh.

Output: the npz documented in `shared/data/SOURCES.md` (centimetres, ICT's own axes): the 17,202
vertices of seven regions (face, head and neck, mouth socket, eye sockets, eyeballs; teeth, gums,
lashes and the eye-blend helpers dropped), faces whose corners are all kept (quads and triangles
apart, in file order), landmarks68, the region table and each kept vertex's original index.

A partial release (`allow_partial`) converts what is there: absent modes become zeros and the
report names them; without it a missing file is an error.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tracking.npz_file import write_npz_atomic
from tracking.params import EXPRESSION_NAMES, N_EXPRESSION, N_IDENTITY, N_LANDMARKS

ICT_VERTEX_COUNT = 26719
NEUTRAL_FILE = "generic_neutral_mesh.obj"
INDEX_FILE = "vertex_indices.json"
# Kept regions, [start, end) in the original topology (ICT-FaceKit README, "Face Model Topology").
KEPT_REGIONS: tuple[tuple[str, int, int], ...] = (
    ("face", 0, 9409),
    ("head_neck", 9409, 11248),
    ("mouth_socket", 11248, 13294),
    ("eye_socket_left", 13294, 13678),
    ("eye_socket_right", 13678, 14062),
    ("eyeball_left", 21451, 23021),
    ("eyeball_right", 23021, 24591),
)


class ICTConversionError(ValueError):
    """The folder is not a usable ICT-FaceKit release; the message names the file and the problem."""


def identity_file(i: int) -> str:
    return f"identity{i:03d}.obj"


@dataclass
class ConvertedModel:
    arrays: dict[str, np.ndarray]  # the npz's keys (SOURCES.md)
    missing: list[str] = field(default_factory=list)  # shape files absent (their modes are zero)

    def report(self) -> str:
        n_expr = N_EXPRESSION - sum(not m.startswith("identity") for m in self.missing)
        n_id = N_IDENTITY - sum(m.startswith("identity") for m in self.missing)
        line = (f"{self.arrays['neutral'].shape[0]} vertices, {n_expr} of {N_EXPRESSION} expression shapes, "
                f"{n_id} of {N_IDENTITY} identity modes")
        if self.missing:
            shown = ", ".join(self.missing[:6]) + (f" and {len(self.missing) - 6} more" if len(self.missing) > 6 else "")
            line += f"; PARTIAL: zero modes for the missing {shown}"
        return line


def release_folder(path: str | os.PathLike) -> Path:
    """The folder with the OBJs: `path` itself or its `FaceXModel/` (the repository root)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder")
    if not (path / NEUTRAL_FILE).is_file() and (path / "FaceXModel" / NEUTRAL_FILE).is_file():
        path = path / "FaceXModel"
    if not (path / NEUTRAL_FILE).is_file():
        raise ICTConversionError(f"{path}: not an ICT-FaceKit model folder (no {NEUTRAL_FILE})")
    return path


def read_obj_vertices(path: Path) -> np.ndarray:
    """The `v x y z` lines of an OBJ as (N, 3) float64."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ICTConversionError(f"{path}: cannot read ({e.strerror})") from None
    lines = [line[2:] for line in data.split(b"\n") if line.startswith(b"v ")]
    if not lines:
        raise ICTConversionError(f"{path}: malformed OBJ (no vertex lines)")
    tokens = b" ".join(lines).split()
    vertices = None
    if len(tokens) == 3 * len(lines):  # the usual case, parsed in one go (150 files per model)
        try:
            vertices = np.array(tokens, np.float64).reshape(-1, 3)
        except ValueError:
            pass
    if vertices is None:  # extra components (v x y z w) or a bad line: line by line
        vertices = np.array([_vertex(path, line) for line in lines])
    if not np.isfinite(vertices).all():
        raise ICTConversionError(f"{path}: OBJ vertices contain NaN or inf")
    return vertices


def _vertex(path: Path, line: bytes) -> list[float]:
    try:
        parts = line.split()
        if len(parts) >= 3:
            return [float(p) for p in parts[:3]]
    except ValueError:
        pass
    text = "v " + line.decode(errors="replace").strip()
    raise ICTConversionError(f"{path}: malformed OBJ vertex line {text[:60]!r}")


def read_obj_faces(path: Path, vertex_count: int) -> list[list[int]]:
    """The `f` lines of an OBJ as 0-based vertex indices (texture/normal indices dropped)."""
    faces = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("f "):
            continue
        try:
            face = [int(corner.split("/")[0]) - 1 for corner in line.split()[1:]]
        except ValueError:
            raise ICTConversionError(f"{path}: malformed OBJ face line {line[:60]!r}") from None
        if len(face) not in (3, 4) or min(face) < 0 or max(face) >= vertex_count:
            raise ICTConversionError(f"{path}: face line {line[:60]!r} is not a triangle or quad of "
                                     f"vertices 1..{vertex_count}")
        faces.append(face)
    return faces


def kept_vertices() -> np.ndarray:
    return np.concatenate([np.arange(a, b) for _, a, b in KEPT_REGIONS]).astype(np.int32)


def _shape_delta(path: Path, neutral: np.ndarray, kept: np.ndarray) -> np.ndarray:
    vertices = read_obj_vertices(path)
    if vertices.shape[0] != neutral.shape[0]:
        raise ICTConversionError(f"{path}: {vertices.shape[0]} vertices, the neutral mesh has {neutral.shape[0]}")
    return (vertices - neutral)[kept].astype(np.float32)


def convert_ict(folder: str | os.PathLike, allow_partial: bool = False,
                progress: Callable[[Iterator], Iterator] | None = None) -> ConvertedModel:
    """Read a release folder into the npz arrays (see the module docstring)."""
    folder = release_folder(folder)
    index_path = folder / INDEX_FILE
    if not index_path.is_file():
        raise ICTConversionError(f"{folder}: no {INDEX_FILE} (it gives the landmark vertices)")
    try:
        index = json.loads(index_path.read_text())
        names = tuple(index["expressions"])
        landmarks = np.asarray(index["idx_to_landmark_verts"], np.int64)
    except (ValueError, KeyError, TypeError) as e:
        raise ICTConversionError(f"{index_path}: not the ICT-FaceKit vertex index file ({e})") from None
    if names != EXPRESSION_NAMES:
        raise ICTConversionError(f"{index_path}: its expression list differs from the 53 ICT-FaceKit names")
    if landmarks.shape != (N_LANDMARKS,):
        raise ICTConversionError(f"{index_path}: {landmarks.size} landmark vertices, expected {N_LANDMARKS}")

    neutral_path = folder / NEUTRAL_FILE
    neutral = read_obj_vertices(neutral_path)
    if neutral.shape[0] != ICT_VERTEX_COUNT:
        raise ICTConversionError(f"{neutral_path}: {neutral.shape[0]} vertices, expected {ICT_VERTEX_COUNT} "
                                 "(the ICT-FaceKit topology)")
    kept = kept_vertices()
    remap = np.full(ICT_VERTEX_COUNT, -1, np.int64)
    remap[kept] = np.arange(kept.size)
    if (remap[landmarks] < 0).any():
        raise ICTConversionError(f"{index_path}: landmark vertices outside the kept regions")

    shape_files = [f"{n}.obj" for n in EXPRESSION_NAMES] + [identity_file(i) for i in range(N_IDENTITY)]
    missing = [f for f in shape_files if not (folder / f).is_file()]
    if missing and not allow_partial:
        raise ICTConversionError(f"{folder}: {len(missing)} of {len(shape_files)} shape files missing "
                                 f"(first: {', '.join(missing[:3])}); --allow-partial converts the rest with zero modes")
    expression = np.zeros((N_EXPRESSION, kept.size, 3), np.float32)
    identity = np.zeros((N_IDENTITY, kept.size, 3), np.float32)
    present = [f for f in shape_files if f not in missing]
    for name in (progress(present) if progress is not None else present):
        delta = _shape_delta(folder / name, neutral, kept)
        if name.startswith("identity"):
            identity[int(name[len("identity"):-len(".obj")])] = delta
        else:
            expression[EXPRESSION_NAMES.index(name[:-len(".obj")])] = delta

    faces = [remap[f] for f in read_obj_faces(neutral_path, ICT_VERTEX_COUNT)]
    faces = [f for f in faces if (f >= 0).all()]
    quads = np.array([f for f in faces if f.size == 4], np.int32).reshape(-1, 4)
    triangles = np.array([f for f in faces if f.size == 3], np.int32).reshape(-1, 3)
    starts = np.cumsum([0] + [b - a for _, a, b in KEPT_REGIONS])
    arrays = {
        "neutral": neutral[kept].astype(np.float32),
        "expression_basis": expression,
        "expression_names": np.array(EXPRESSION_NAMES),
        "identity_basis": identity,
        "quads": quads,
        "triangles": triangles,
        "landmarks68": remap[landmarks].astype(np.int32),
        "region_names": np.array([n for n, _, _ in KEPT_REGIONS]),
        "region_ranges": np.stack([starts[:-1], starts[1:]], 1).astype(np.int32),
        "source_vertex_index": kept,
    }
    return ConvertedModel(arrays, missing)


def write_face_model(path: str | os.PathLike, model: ConvertedModel) -> None:
    """Write atomically (tracking/npz_file.py)."""
    write_npz_atomic(path, "face model", **model.arrays)
