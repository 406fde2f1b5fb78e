"""The ICT-FaceKit linear 3DMM, evaluated in batch in torch.

Canonical space (shared with the avatar): the ICT mesh scaled so the head is about one unit
long (1 unit = 25 cm) and turned into OpenCV axes (+x to the image's right for a frontal face,
+y down, the face looking along -z). A frontal head in front of an OpenCV camera therefore has
rotation ~0 and translation ~(0, 0, d), which keeps smoothing and retargeting away from the
axis-angle singularity at pi.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from core.paths import file_checksum
from core.rotations import axis_angle_to_matrix
from tracking.assets import FACE_MODEL_FILE, AssetNotFoundError, find_asset
from tracking.params import EXPRESSION_NAMES, N_EXPRESSION, N_IDENTITY, N_LANDMARKS

CM_TO_CANONICAL = 0.04
# Canonical = CM_TO_CANONICAL * diag(1, -1, -1) @ ICT (a rotation by pi about x, then scale).
ICT_TO_CANONICAL_AXES = np.array([1.0, -1.0, -1.0], np.float32)


class FaceModelError(ValueError):
    """The face model file is missing keys or has inconsistent shapes."""


@dataclass(frozen=True)
class FaceModelData:
    """The raw arrays of ict_face_model.npz, converted to canonical units and axes."""

    neutral: np.ndarray  # (V, 3)
    expression_basis: np.ndarray  # (53, V, 3)
    identity_basis: np.ndarray  # (100, V, 3)
    quads: np.ndarray  # (Q, 4)
    triangles: np.ndarray  # (T, 3)
    landmarks68: np.ndarray  # (68,)
    region_names: tuple[str, ...]
    region_ranges: np.ndarray  # (R, 2)
    checksum: str  # sha256 of the npz file

    @property
    def faces(self) -> np.ndarray:
        """All faces as triangles (quads split along their 0-2 diagonal)."""
        q = self.quads
        return np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]], self.triangles]).astype(np.int64)

    def region(self, name: str) -> slice:
        i = self.region_names.index(name)
        return slice(int(self.region_ranges[i, 0]), int(self.region_ranges[i, 1]))


def load_face_model_data(path: str | os.PathLike | None = None) -> FaceModelData:
    """Load the npz from `path` or the asset lookup path of DESIGN.md, whose last step downloads
    and converts the ICT-FaceKit release into the user cache (tracking/face_model_download.py)."""
    from tracking.face_model_download import MANUAL_ROUTE, FaceModelDownloadError, fetch_face_model

    try:
        file = find_asset(FACE_MODEL_FILE, path)
    except AssetNotFoundError as e:
        if path is not None:  # a file the user named is missing: say so rather than download
            raise AssetNotFoundError(f"{e}; {MANUAL_ROUTE}") from None
        try:
            file = fetch_face_model()
        except FaceModelDownloadError as download_error:
            raise FaceModelDownloadError(f"{e}; {download_error}") from None
    try:
        with np.load(file, allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files}
    except Exception as e:  # np.load raises several unrelated types for a damaged file
        raise FaceModelError(f"{file}: not a readable face model npz ({e})") from None
    required = ["neutral", "expression_basis", "expression_names", "identity_basis", "quads",
                "triangles", "landmarks68", "region_names", "region_ranges"]
    missing = [k for k in required if k not in arrays]
    if missing:
        raise FaceModelError(f"{file}: missing keys {missing}")
    v = arrays["neutral"].shape[0]
    if arrays["expression_basis"].shape != (N_EXPRESSION, v, 3):
        raise FaceModelError(f"{file}: expression_basis has shape {arrays['expression_basis'].shape}")
    if arrays["identity_basis"].shape != (N_IDENTITY, v, 3):
        raise FaceModelError(f"{file}: identity_basis has shape {arrays['identity_basis'].shape}")
    if tuple(str(n) for n in arrays["expression_names"]) != EXPRESSION_NAMES:
        raise FaceModelError(f"{file}: expression names differ from the ICT-FaceKit order")
    if arrays["landmarks68"].shape != (N_LANDMARKS,):
        raise FaceModelError(f"{file}: landmarks68 has shape {arrays['landmarks68'].shape}")
    axes = ICT_TO_CANONICAL_AXES * CM_TO_CANONICAL
    return FaceModelData(
        neutral=(arrays["neutral"] * axes).astype(np.float32),
        expression_basis=(arrays["expression_basis"] * axes).astype(np.float32),
        identity_basis=(arrays["identity_basis"] * axes).astype(np.float32),
        quads=arrays["quads"].astype(np.int64),
        triangles=arrays["triangles"].astype(np.int64),
        landmarks68=arrays["landmarks68"].astype(np.int64),
        region_names=tuple(str(n) for n in arrays["region_names"]),
        region_ranges=arrays["region_ranges"].astype(np.int64),
        checksum=file_checksum(file),
    )


class FaceModel(torch.nn.Module):
    """Linear 3DMM over a subset of vertices (all by default), batched in torch.

    Restricting to a subset (`FaceModel.subset`) keeps per-frame fitting cheap: the fitter only
    ever needs the vertices its landmarks touch.
    """

    def __init__(self, neutral: np.ndarray, expression_basis: np.ndarray,
                 identity_basis: np.ndarray) -> None:
        super().__init__()
        v = neutral.shape[0]
        self.register_buffer("neutral", torch.as_tensor(neutral, dtype=torch.float32))
        # Bases stored as (K, V*3) so evaluation is one matmul.
        self.register_buffer("expression_basis",
                             torch.as_tensor(expression_basis, dtype=torch.float32).reshape(-1, v * 3))
        self.register_buffer("identity_basis",
                             torch.as_tensor(identity_basis, dtype=torch.float32).reshape(-1, v * 3))

    @classmethod
    def from_data(cls, data: FaceModelData, vertex_ids: np.ndarray | None = None) -> "FaceModel":
        if vertex_ids is None:
            return cls(data.neutral, data.expression_basis, data.identity_basis)
        ids = np.asarray(vertex_ids, np.int64)
        return cls(data.neutral[ids], data.expression_basis[:, ids], data.identity_basis[:, ids])

    @property
    def num_vertices(self) -> int:
        return self.neutral.shape[0]

    def vertices(self, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        """Canonical-space vertices: (B, 100), (B, 53) -> (B, V, 3)."""
        offsets = identity @ self.identity_basis + expression @ self.expression_basis
        return self.neutral + offsets.reshape(-1, self.num_vertices, 3)

    @staticmethod
    def posed(vertices: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        """Canonical -> camera: R(rotation) v + translation, batched (B, V, 3)."""
        r = axis_angle_to_matrix(rotation)
        return vertices @ r.transpose(-1, -2) + translation[:, None, :]


class CanonicalLandmarks:
    """The 3DMM's 68 landmarks (iBUG order) in canonical space, unposed: the one routine behind the
    fitter's landmarks, the dataset's 3D landmarks and the mesh stage's neutral P0."""

    def __init__(self, data: FaceModelData) -> None:
        self._model = FaceModel.from_data(data, data.landmarks68)

    def __call__(self, identity: np.ndarray, expressions: np.ndarray) -> np.ndarray:
        """(100,) identity and (T, 53) expressions -> (T, 68, 3) float32."""
        with torch.no_grad():
            ident = torch.as_tensor(identity, dtype=torch.float32)[None].expand(len(expressions), -1)
            return self._model.vertices(ident, torch.as_tensor(expressions, dtype=torch.float32)).numpy()
