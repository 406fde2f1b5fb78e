"""What the tracked face model already knows, given to a new avatar before it sees the images.

The expression coefficients that drive the avatar are the ICT 3DMM's, and the tracker fitted the
person's identity, so the 3DMM says how each point of this person's face moves with each
coefficient. A Gaussian stage that has to discover that from a few thousand frames on a CPU
learns flattened expressions and a twisted mouth; starting f_def^exp from the blendshapes
(avatar.deformation_fit) gives it the jaw, lips, blinks and brows from step 0, and training
refines them. Each Gaussian follows the face-model vertex nearest to it at rest, with a weight
that falls from 1 to 0 between `FOLLOW_NEAR` and `FOLLOW_FAR` from the surface, so hair and
the hull around the head stay put. Eyeballs and eye sockets are not candidates: the blendshapes
leave them still, and an eyelid Gaussian must follow the lid, not the eye under it.

The eyelids are a few millimetres of a 128 px render and most videos rarely close them, so the
Gaussians sampled from the mesh stage's smooth surface leave few on a lid (on d6, 9 of 6,300 move
by more than 2.5 mm in a blink) and the blinks are lost. `eyelid_points` puts extra Gaussians on
the identity's lids, where the blendshapes move them.

`sample_colors` gives each Gaussian the mean colour of the pixels it lands on in a spread of
training frames where it is visible (its depth within `VISIBLE_DEPTH` of the rendered depth).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from avatar.gaussians import GaussianSet
from avatar.raster import render_gaussians
from avatar.training_data import TrainingData
from tracking.face_model import FaceModel, FaceModelData, load_face_model_data
from tracking.params import EXPRESSION_NAMES, N_EXPRESSION

FOLLOW_NEAR = 0.02  # canonical units (5 mm): closer than this to the surface, follow it fully
FOLLOW_FAR = 0.08  # 2 cm: farther than this, do not follow
FOLLOWED_REGIONS = ("face", "head_neck", "mouth_socket")
VISIBLE_DEPTH = 0.03  # canonical units in front of the rendered depth that still count as seen


@dataclass
class FaceModelTarget:
    """`DeformationTarget` of Gaussians at `points` that follow the person's 3DMM surface."""

    points: np.ndarray  # (N, 3) rest positions X0
    basis: torch.Tensor  # (53, N, 3) each point's followed blendshape displacement per unit weight

    def deformed(self, expression: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        e = expression.to(torch.float32)
        rest = torch.as_tensor(self.points)
        if index is None:
            return rest + torch.einsum("bk,knc->bnc", e, self.basis)
        basis = self.basis.permute(1, 0, 2)[index]  # (B, M, 53, 3)
        return rest[index] + torch.einsum("bk,bmkc->bmc", e, basis)


def _followed_rest(identity: np.ndarray, data: FaceModelData) -> tuple[np.ndarray, np.ndarray]:
    """(ids (V,), rest positions (V, 3)) of the FOLLOWED_REGIONS vertices of the identity's mesh."""
    ids = np.concatenate([np.arange(data.region(r).start, data.region(r).stop) for r in FOLLOWED_REGIONS])
    with torch.no_grad():
        rest = FaceModel.from_data(data).vertices(torch.as_tensor(identity, dtype=torch.float32)[None],
                                                  torch.zeros(1, N_EXPRESSION))[0].numpy()[ids]
    return ids, rest


def face_model_target(points: torch.Tensor, identity: np.ndarray, data: FaceModelData | None = None
                      ) -> FaceModelTarget:
    """The blendshape motion each of `points` (N, 3) canonical inherits from the identity's mesh."""
    data = load_face_model_data() if data is None else data
    ids, rest = _followed_rest(identity, data)
    pts = points.detach().cpu().numpy().astype(np.float32)
    distance, nearest = cKDTree(rest).query(pts)
    weight = np.clip((FOLLOW_FAR - distance) / (FOLLOW_FAR - FOLLOW_NEAR), 0.0, 1.0).astype(np.float32)
    basis = data.expression_basis[:, ids[nearest]] * weight[None, :, None]
    return FaceModelTarget(points=pts, basis=torch.as_tensor(np.ascontiguousarray(basis), dtype=torch.float32))


EYELID_SHARE = 0.25  # a lid vertex moves by at least this share of the largest blink motion
EYELID_JITTER = 0.002  # canonical units (0.5 mm): spread of the points around the lid vertices
BLINK_CHANNELS = ("eyeBlink_L", "eyeBlink_R")


def eyelid_points(identity: np.ndarray, count: int, generator: torch.Generator,
                  data: FaceModelData | None = None) -> torch.Tensor:
    """`count` canonical points (count, 3) on the identity's eyelids at rest: the vertices the
    eyeBlink blendshapes move, drawn with replacement and jittered by EYELID_JITTER."""
    data = load_face_model_data() if data is None else data
    ids, rest = _followed_rest(identity, data)
    blink = [EXPRESSION_NAMES.index(name) for name in BLINK_CHANNELS]
    motion = np.linalg.norm(data.expression_basis[blink][:, ids], axis=-1).max(0)
    lids = torch.as_tensor(rest[motion >= EYELID_SHARE * motion.max()])
    pick = torch.randint(len(lids), (count,), generator=generator)
    return lids[pick] + EYELID_JITTER * torch.randn(count, 3, generator=generator)


def sample_colors(gaussians: list[GaussianSet], data: TrainingData, frames: list[int], resolution: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean colour (N, 3) in [0, 1], number of frames each Gaussian was seen in (N,)).

    `gaussians[i]` is the model's output for `frames[i]` (posed, world space); each is rendered
    for its depth, and a Gaussian whose centre projects inside the image no farther than
    VISIBLE_DEPTH behind that depth takes the ground-truth colour under its centre.
    """
    n = gaussians[0].means.shape[0]
    total = torch.zeros(n, 3, dtype=torch.float64)
    seen = torch.zeros(n, dtype=torch.float64)
    for g, j in zip(gaussians, frames):
        camera = data.camera(j, resolution)
        depth = render_gaussians(g, camera).depth[..., 0]
        image = data.image(j, resolution)
        uc, vc, inside, z = camera.pixel_under(g.means)
        visible = inside & (z <= depth[vc, uc] + VISIBLE_DEPTH)
        total[visible] += image[vc[visible], uc[visible]].double()
        seen[visible] += 1
    return (total / seen.clamp_min(1)[:, None]).float(), seen.float()
