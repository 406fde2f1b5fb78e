"""Photometric refinement of a video's tracked head poses: a second tracking pass over all frames.

Why: 2D landmarks pin the features' outline but leave the head's pitch and depth loosely
determined, and they jitter from frame to frame. The skin of the forehead, nose and cheekbones
barely moves with expression, and its texture pins the pose far better than its outline does.
`cpu-fast` avatars trained and scored on the refined poses gain 0.74 and 1.12 dB held out on d6
and andrew_clip1 and lose 0.19 on obama_clip1, `cpu` avatars 0.90, 2.11 and -0.14
(BENCHMARKS.md, "Tenth round"), so `prepare` runs it by default (--no-pose-refine skips it).

How: the rigid points of the fitted ICT face (vertices that no blendshape moves by more than
`rigid_cm`) get one colour each, the median over frames of the image at their projection. Each
frame's rigid pose is then refined so that its image matches those colours, by Gauss-Newton on
(rotation about the head's origin, translation, a per-channel gain and bias for exposure), with
robust (Huber) weights, a light ridge towards the landmark pose, and only points that face the
camera inside the person's mask (self-occlusion is not modelled: for the small turns of a
person facing a camera, facing away is what hides skin). The images are high-passed first (minus
their blur), which on real videos placed the held-out heads better than raw colours. Coarse to
fine, the colours re-read at every level, so pose and texture settle together. The landmark fit
stays the start and the anchor; expressions are not changed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from tracking.face_model import CM_TO_CANONICAL, FaceModel, FaceModelData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotometricConfig:
    rigid_cm: float = 0.3  # a vertex is rigid if no blendshape moves it further than this
    levels: tuple[int, ...] = (64, 128, 256)  # image sides, coarse to fine
    iterations: int = 6  # Gauss-Newton steps per level
    min_facing: float = 0.3  # cosine between the surface normal and the view ray
    huber: float = 0.06  # colour residual (0-1 scale) beyond which a point counts linearly
    # Cost of one radian (or canonical unit, 25 cm) away from the landmark pose, against a mean
    # squared colour residual of ~1e-3: weak enough to move the pose degrees where the texture
    # says so, strong enough to hold frames whose skin is hidden or blurred.
    ridge_rotation: float = 0.01
    ridge_translation: float = 0.01
    chunk: int = 64  # frames solved together (memory)
    # Compare the images minus their blur of sigma = this x the side (0: raw colours). Measured,
    # not derived: on obama_clip1 raw colours put the held-out heads ~1 degree off and cost 2.3 dB
    # held out, high-passed ones did not, and d6 gained 0.4 dB more (BENCHMARKS.md, "Tenth round").
    highpass: float = 0.0625

    def __post_init__(self) -> None:
        if not self.levels or any(s < 16 for s in self.levels):
            raise ValueError(f"levels must be image sides of at least 16, got {self.levels}")
        if self.iterations < 1 or self.chunk < 1:
            raise ValueError("iterations and chunk must be positive")
        if not 0.0 <= self.highpass <= 0.3:  # the blur's reflected border must fit in the image
            raise ValueError(f"highpass must be within [0, 0.3], got {self.highpass}")


@dataclass
class PhotometricResult:
    rotation: np.ndarray  # (T, 3) axis-angle, refined
    translation: np.ndarray  # (T, 3)
    rms_before: float  # root mean square colour residual of the visible rigid points, finest level
    rms_after: float


def rigid_vertices(data: FaceModelData, rigid_cm: float) -> np.ndarray:
    """Face-region vertex ids that no single blendshape moves by more than `rigid_cm`."""
    face = data.region("face")
    motion = np.linalg.norm(data.expression_basis[:, face], axis=2).max(0) / CM_TO_CANONICAL
    return np.flatnonzero(motion <= rigid_cm) + face.start


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, oriented so the face (looking along -z) points to -z."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(vertices)
    for i in range(3):
        np.add.at(out, faces[:, i], n)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) with skew(v) @ w = v x w."""
    z = torch.zeros_like(v[..., 0])
    x, y, w = v.unbind(-1)
    return torch.stack([z, -w, y, w, z, -x, -y, x, z], -1).reshape(*v.shape, 3)


def _level_images(images: torch.Tensor, side: int) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> resized to side x side and lightly blurred (B, C, side, side)."""
    out = F.interpolate(images, size=(side, side), mode="area") if images.shape[-1] != side else images
    k = torch.tensor([0.25, 0.5, 0.25], dtype=out.dtype)
    c = out.shape[1]
    # Zero padding darkens the outermost pixel row; the face's rigid points never lie there.
    out = F.conv2d(out, k.view(1, 1, 1, 3).expand(c, 1, 1, 3), padding=(0, 1), groups=c)
    return F.conv2d(out, k.view(1, 1, 3, 1).expand(c, 1, 3, 1), padding=(1, 0), groups=c)


def _high_pass(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, S, S) minus its Gaussian blur of `sigma` pixels (reflected at the border), plus 0.5."""
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = images.shape[1]
    blur = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                    groups=c)
    blur = F.conv2d(F.pad(blur, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                    groups=c)
    return images - blur + 0.5


def _sample(maps: torch.Tensor, uv: torch.Tensor, side: int) -> torch.Tensor:
    """maps (B, C, S, S) at pixel positions uv (B, P, 2) (pixel i spans [i, i+1)) -> (B, P, C)."""
    grid = (uv * (2.0 / side) - 1.0)[:, :, None, :]
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)[..., 0] \
        .transpose(1, 2)


class _Frames:
    """The video's frames as uint8 tensors, with the rigid points' canonical positions per frame."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, points: torch.Tensor, normals: torch.Tensor,
                 K: np.ndarray, highpass: float = 0.0) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)  # (T, 3, S, S) uint8
        self.masks = torch.from_numpy(np.ascontiguousarray(masks))[:, None]  # (T, 1, S, S) uint8
        self.points = points  # (T, P, 3) canonical, with the frame's expression
        self.normals = normals  # (P, 3) canonical
        self.side = images.shape[1]
        self.K = torch.as_tensor(K, dtype=torch.float32)
        self.highpass = highpass

    def level(self, idx: slice, side: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Colour (B, 3, s, s) and mask (B, 1, s, s) of frames idx at side s."""
        rgb = _level_images(self.images[idx].float() / 255.0, side)
        if self.highpass > 0:
            rgb = _high_pass(rgb, self.highpass * side)
        mask = self.masks[idx].float() / 255.0
        if side != self.side:
            mask = F.interpolate(mask, size=(side, side), mode="area")
        return rgb, mask

    def intrinsics(self, side: int) -> tuple[float, float, float, float]:
        s = side / self.side
        return (float(self.K[0, 0]) * s, float(self.K[1, 1]) * s, float(self.K[0, 2]) * s, float(self.K[1, 2]) * s)


def project(X: torch.Tensor, intr: tuple[float, float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera points (B, P, 3) -> pixel positions (B, P, 2) and d(uv)/dX (B, P, 2, 3)."""
    fx, fy, cx, cy = intr
    z = X[..., 2].clamp_min(1e-6)
    iz = 1.0 / z
    uv = torch.stack([fx * X[..., 0] * iz + cx, fy * X[..., 1] * iz + cy], -1)
    zero = torch.zeros_like(z)
    J = torch.stack([fx * iz, zero, -fx * X[..., 0] * iz * iz,
                     zero, fy * iz, -fy * X[..., 1] * iz * iz], -1).reshape(*X.shape[:2], 2, 3)
    return uv, J


def _visibility(normals: torch.Tensor, R: torch.Tensor, X: torch.Tensor, mask: torch.Tensor, uv: torch.Tensor,
                side: int, min_facing: float) -> torch.Tensor:
    """Weight (B, P) of each rigid point: its facing cosine where it faces the camera inside the mask."""
    n = normals @ R.transpose(1, 2)  # (B, P, 3)
    facing = -(n * X).sum(-1) / X.norm(dim=-1).clamp_min(1e-9)
    inside = (uv >= 1).all(-1) & (uv <= side - 1).all(-1)
    in_mask = _sample(mask, uv, side)[..., 0] > 0.5
    return torch.where((facing > min_facing) & inside & in_mask, facing, torch.zeros_like(facing))


def refine_face_poses(images: np.ndarray, masks: np.ndarray, K: np.ndarray, data: FaceModelData,
                      identity: np.ndarray, expression: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                      config: PhotometricConfig = PhotometricConfig(),
                      progress: Callable[[Iterator, str, int], Iterator] | None = None) -> PhotometricResult:
    """Refine the tracked head poses of T frames on the rigid points of their fitted ICT face.

    identity (100,) and expression (T, 53) from the landmark fit; the rest as `refine_poses`.
    """
    if expression.shape[0] != images.shape[0]:
        raise ValueError("expression must have one row per image")
    ids = rigid_vertices(data, config.rigid_cm)
    with torch.no_grad():
        ident = torch.as_tensor(identity, dtype=torch.float32)[None]
        points = FaceModel.from_data(data, ids).vertices(ident.expand(images.shape[0], -1),
                                                         torch.as_tensor(expression, dtype=torch.float32))
        whole = FaceModel.from_data(data).vertices(ident, torch.zeros(1, expression.shape[1]))[0].numpy()
    normals = vertex_normals(whole, data.faces)[ids]
    if normals[:, 2].mean() > 0:  # ICT's winding may point the normals inwards
        normals = -normals
    return refine_poses(images, masks, K, points.numpy(), normals, rotation, translation, config, progress)


def refine_poses(images: np.ndarray, masks: np.ndarray, K: np.ndarray, points: np.ndarray, normals: np.ndarray,
                 rotation: np.ndarray, translation: np.ndarray, config: PhotometricConfig = PhotometricConfig(),
                 progress: Callable[[Iterator, str, int], Iterator] | None = None) -> PhotometricResult:
    """Refine the rigid poses of T frames against the colours of their own rigid surface points.

    images (T, S, S, 3) uint8 RGB, masks (T, S, S) uint8 (person = 255), K (3, 3) intrinsics of
    that S x S image (pixel i spans [i, i + 1)), points (T, P, 3) each frame's rigid points in the
    head's canonical space, normals (P, 3) their outward normals there, rotation (axis-angle) and
    translation (T, 3): the starting poses (canonical head -> camera), also the ridge's anchor.
    """
    t_count = images.shape[0]
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be (T, S, S, 3), got {images.shape}")
    if masks.shape != images.shape[:3] or points.ndim != 3 or points.shape[0] != t_count \
            or rotation.shape != (t_count, 3) or translation.shape != (t_count, 3):
        raise ValueError("masks, points, rotation and translation must have one row per image")
    if normals.shape != points.shape[1:]:
        raise ValueError(f"normals must be (P, 3) for {points.shape[1]} points, got {normals.shape}")
    wrap = progress or (lambda it, label, total: it)
    frames = _Frames(images, masks, torch.as_tensor(points, dtype=torch.float32),
                     torch.as_tensor(normals, dtype=torch.float32), K, config.highpass)
    R0 = axis_angle_to_matrix(torch.as_tensor(rotation, dtype=torch.float32))
    t0 = torch.as_tensor(translation, dtype=torch.float32)
    R, t = R0.clone(), t0.clone()
    affine = torch.zeros(t_count, 6)  # per-channel gain - 1 and bias
    chunks = [slice(i, min(i + config.chunk, t_count)) for i in range(0, t_count, config.chunk)]
    finest = config.levels[-1]
    rms_before = _rms(frames, R, t, affine, chunks, finest, config)
    # Within a level the texture is fixed and the chunks are independent, so each chunk's images
    # are built once per level and take all of that level's steps.
    steps = [(side, k, idx) for side in config.levels for k, idx in enumerate(chunks)]
    texture = None
    for side, k, idx in wrap(iter(steps), "photometric pose", len(steps)):
        if k == 0:  # texture and poses settle together: each level re-reads the colours at the poses so far
            texture = _texture(frames, R, t, affine, chunks, side, config)
        maps, mask = frames.level(idx, side)
        for _ in range(config.iterations):
            _gauss_newton_step(frames, idx, maps, mask, R, t, R0, t0, affine, texture, config)
    rms_after = _rms(frames, R, t, affine, chunks, finest, config)
    log.info("photometric pose: colour residual %.4f -> %.4f over %d rigid points", rms_before, rms_after,
             points.shape[1])
    return PhotometricResult(matrix_to_axis_angle(R).numpy().astype(np.float32), t.numpy().astype(np.float32),
                             rms_before, rms_after)


def _texture(frames: _Frames, R: torch.Tensor, t: torch.Tensor, affine: torch.Tensor, chunks: list[slice],
             side: int, config: PhotometricConfig) -> torch.Tensor:
    """(P, 3) median colour of each rigid point over the frames that see it (exposure undone)."""
    intr = frames.intrinsics(side)
    samples = []
    for idx in chunks:
        maps, mask = frames.level(idx, side)
        X = frames.points[idx] @ R[idx].transpose(1, 2) + t[idx, None]
        uv, _ = project(X, intr)
        w = _visibility(frames.normals, R[idx], X, mask, uv, side, config.min_facing)
        colour = (_sample(maps, uv, side) - affine[idx, None, 3:]) / (1 + affine[idx, None, :3])
        samples.append(torch.where(w[..., None] > 0, colour, torch.full_like(colour, float("nan"))))
    tex = torch.nanmedian(torch.cat(samples), dim=0).values
    return torch.nan_to_num(tex, nan=0.5)


def _rms(frames: _Frames, R: torch.Tensor, t: torch.Tensor, affine: torch.Tensor, chunks: list[slice], side: int,
         config: PhotometricConfig) -> float:
    """Root mean square colour residual over the visible rigid points of all frames, at one level,
    against the texture read at these poses."""
    texture = _texture(frames, R, t, affine, chunks, side, config)
    total = count = 0.0
    for idx in chunks:
        maps, mask = frames.level(idx, side)
        lin = linearize(maps, mask, frames.intrinsics(side), frames.points[idx], frames.normals, R[idx], t[idx],
                        affine[idx], texture, config.min_facing)
        total += float((lin.residual.square() * lin.visible[..., None]).sum())
        count += 3 * float(lin.visible.sum())
    return (total / max(count, 1.0)) ** 0.5


@dataclass
class Linearization:
    """The colour residual of B frames' rigid points and its Jacobian in the 12 step parameters."""

    residual: torch.Tensor  # (B, P, 3) image colour - (gain * texture + bias)
    jacobian: torch.Tensor  # (B, P, 3, 12): rotation (3), translation (3), gain - 1 (3), bias (3)
    visible: torch.Tensor  # (B, P) facing cosine where the point is seen, else 0


def apply_step(R: torch.Tensor, t: torch.Tensor, affine: torch.Tensor, step: torch.Tensor) \
        -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pose and exposure after a step (B, 12), in the parametrisation `linearize` differentiates:
    a rotation about the head's origin (X' = exp(w) (X - t) + t + dt), then the translation."""
    return axis_angle_to_matrix(step[:, :3]) @ R, t + step[:, 3:6], affine + step[:, 6:]


def linearize(maps: torch.Tensor, mask: torch.Tensor, intr: tuple[float, float, float, float], points: torch.Tensor,
              normals: torch.Tensor, R: torch.Tensor, t: torch.Tensor, affine: torch.Tensor, texture: torch.Tensor,
              min_facing: float) -> Linearization:
    """Residual and Jacobian of B frames. maps (B, 3, S, S) colour; mask (B, 1, S, S); points
    (B, P, 3) canonical; R (B, 3, 3), t (B, 3)."""
    side = maps.shape[-1]
    X = points @ R.transpose(1, 2) + t[:, None]
    uv, duv = project(X, intr)
    visible = _visibility(normals, R, X, mask, uv, side, min_facing)
    residual = _sample(maps, uv, side) - ((1 + affine[:, None, :3]) * texture + affine[:, None, 3:])
    # The image gradient by central differences one pixel either side, sampled at the points only
    # (the same as interpolating a per-pixel gradient image, at a fraction of the cost).
    dx, dy = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    gx = (_sample(maps, uv + dx, side) - _sample(maps, uv - dx, side)) / 2
    gy = (_sample(maps, uv + dy, side) - _sample(maps, uv - dy, side)) / 2
    # Chain rule: image gradient (B, P, channel, 2) times d(uv)/dX (B, P, 2, 3) times dX/dstep.
    dX = torch.stack([gx, gy], -1) @ duv
    d_rot = -dX @ _skew(X - t[:, None])  # dX/dw = -skew(X - t)
    eye = torch.eye(3).expand(*X.shape[:2], 3, 3)
    jacobian = torch.cat([d_rot, dX, -eye * texture[None, :, :, None], -eye], -1)
    return Linearization(residual, jacobian, visible)


def _robust(residual: torch.Tensor, visible: torch.Tensor, huber: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame Huber cost (mean over visible points) and its IRLS weights (B, P, 3)."""
    a = residual.abs()
    rho = torch.where(a <= huber, a * a, 2 * huber * a - huber * huber)
    irls = torch.where(a <= huber, torch.ones_like(a), huber / a.clamp_min(1e-12)) * visible[..., None]
    norm = 3 * visible.sum(1).clamp_min(1e-6)
    return (rho * visible[..., None]).sum((1, 2)) / norm, irls / norm[:, None, None]


def _gauss_newton_step(frames: _Frames, idx: slice, maps: torch.Tensor, mask: torch.Tensor, R: torch.Tensor,
                       t: torch.Tensor, R0: torch.Tensor, t0: torch.Tensor, affine: torch.Tensor,
                       texture: torch.Tensor, config: PhotometricConfig) -> None:
    """One damped Gauss-Newton step on frames idx (their level images `maps`, `mask`), in place; a
    frame keeps its pose unless its cost drops."""
    intr = frames.intrinsics(maps.shape[-1])
    B = R[idx].shape[0]
    ridge_diag = torch.tensor([config.ridge_rotation] * 3 + [config.ridge_translation] * 3 + [0.0] * 6)

    def ridge_offset(Rc: torch.Tensor, tc: torch.Tensor) -> torch.Tensor:
        """(B, 12) offset from the landmark pose, zero for the exposure terms."""
        dw = matrix_to_axis_angle(Rc @ R0[idx].transpose(1, 2))
        return torch.cat([dw, tc - t0[idx], torch.zeros(B, 6)], -1)

    def cost(Rc: torch.Tensor, tc: torch.Tensor, ac: torch.Tensor) -> torch.Tensor:
        lin = linearize(maps, mask, intr, frames.points[idx], frames.normals, Rc, tc, ac, texture,
                        config.min_facing)
        return _robust(lin.residual, lin.visible, config.huber)[0] + (ridge_diag * ridge_offset(Rc, tc) ** 2).sum(-1)

    Rb, tb, ab = R[idx], t[idx], affine[idx]
    lin = linearize(maps, mask, intr, frames.points[idx], frames.normals, Rb, tb, ab, texture, config.min_facing)
    current, weight = _robust(lin.residual, lin.visible, config.huber)
    offset = ridge_offset(Rb, tb)
    current = current + (ridge_diag * offset ** 2).sum(-1)
    J = lin.jacobian
    H = torch.einsum("bpci,bpc,bpcj->bij", J, weight, J) + torch.diag_embed(ridge_diag).expand(B, 12, 12)
    g = torch.einsum("bpci,bpc,bpc->bi", J, weight, lin.residual) + ridge_diag * offset
    diag = torch.diagonal(H, dim1=1, dim2=2).clamp_min(1e-9)
    pending = torch.ones(B, dtype=torch.bool)
    for damping in (1e-3, 1e-1, 10.0):
        step = -torch.linalg.solve(H + torch.diag_embed(diag * damping), g[..., None])[..., 0]
        Rn, tn, an = apply_step(Rb, tb, ab, step)
        take = pending & (cost(Rn, tn, an) < current)
        R[idx] = torch.where(take[:, None, None], Rn, R[idx])
        t[idx] = torch.where(take[:, None], tn, t[idx])
        affine[idx] = torch.where(take[:, None], an, affine[idx])
        pending &= ~take
        if not pending.any():
            break
