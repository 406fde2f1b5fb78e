"""The "mannequin": a demo Gaussian head avatar generated from the ICT face model's mean head.

No video and no GPU needed: everything comes from the 3DMM, whose blendshape deformation the
avatar's MLPs are fitted to reproduce; it serves as the demo and test avatar.

Build (`build_mannequin`), deterministic for a given seed:
1. Surface samples. Gaussians are sampled uniformly by area on the mean head (identity 0) per
   region of the face model: face, head and neck, the mouth socket (the mouth interior, seen
   when the jaw opens), eye sockets and the front of both eyeballs; plus extra samples on the
   eyelids (face triangles a blink moves), which a uniform draw covers too thinly for a blink
   to read. Each sample keeps its triangle and barycentric coordinates, so its point on any
   deformed mesh is known exactly.
   Gaussians are flat discs in the surface's tangent plane (thickness `DISC_THICKNESS` of their
   width), sized from the area each sample covers.
2. Colours ("mannequin look"): a skin tone with Lambert shading baked in from a fixed light,
   darker lips and eyebrows, a dark red mouth interior, white eyeballs with a dark iris and a
   black pupil (so blinks and gaze read). The first three feature channels are that RGB; the
   next `len(CLASSES)` are a one-hot material code, which gives the SR CNN sharp material
   edges (iris, lips) that a 64-pixel RGB render blurs; then three high-contrast copies of the
   RGB for the SR CNN (`_color_readout`); the remaining channels are left at 0.
3. Target deformation (`MannequinSurface.deformed`): the ICT blendshapes applied to each
   sample's surface point, plus an eyeball rotation about the eyeball's centre driven by the
   eyeLook* weights (the ICT expression basis leaves the eyeballs still, `GAZE_YAW/PITCH_DEG`
   per unit weight), so gaze shows.
4. MLPs. f_def^exp is FITTED (Adam) so that s_def·(λ_exp f_def^exp + λ_pose f_def^pose)
   reproduces the target offsets over random sparse expressions (`random_expressions`).
   The rest are set in closed form, because their exact targets are known: the 3DMM has no
   pose-dependent deformation and a mannequin has no expression- or pose-dependent colour or
   shape, so f_def^pose and both attribute MLPs output 0 (zero output layer) and both colour
   MLPs output the Gaussian's own colour through the raw input that PointMLP re-injects in
   front of their output layer (a linear read-out of tanh(F0)); since λ_exp + λ_pose = 1 the
   blend then gives exactly that colour. λ's fall-off radii are widened (`BLEND_NEAR/FAR`)
   so that every point the blendshapes move noticeably is expression-driven.
5. SR CNN: trained on renders (L1 weighted towards fine detail) to map the 64² 32-channel
   render to the 256² RGB render of the same Gaussians (the rasterizer at 4x resolution), over
   random expressions and poses; `sr_candidates` initialisations are trained and the lowest
   final L1 kept.

Units: canonical (tracking.face_model; the head is about 1 unit long). "Head size" for error
figures is `head_size()`: the bounding-box diagonal of the mean head's face-model vertices
(about 1.9 units, 48 cm; it includes the neck).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from avatar.camera import Camera
from avatar.checkpoint import Avatar, AvatarMetadata
from avatar.config import ModelConfig
from avatar.deformation_fit import fit_expression_deformation, random_expressions
from avatar.head_model import GaussianHeadModel
from avatar.mlp import PointMLP
from avatar.super_resolution import SR_FACTOR, SuperResolution
from tracking.face_model import FaceModelData, load_face_model_data
from tracking.params import expression_index

MANNEQUIN_VERSION = 8  # bump whenever the build changes: cached demo avatars are then rebuilt

# Material classes (one-hot feature channels 3 .. 3 + len(CLASSES)).
CLASSES = ("skin", "lips", "brow", "mouth", "socket", "sclera", "iris", "pupil")
COLORS = {
    "skin": (0.86, 0.72, 0.62), "lips": (0.70, 0.33, 0.33), "brow": (0.33, 0.24, 0.19),
    "mouth": (0.30, 0.06, 0.08), "socket": (0.55, 0.30, 0.30), "sclera": (0.95, 0.94, 0.92),
    "iris": (0.25, 0.33, 0.52), "pupil": (0.03, 0.03, 0.04),
}
LIGHT_DIR = (-0.35, -0.55, -0.76)  # towards the light: front (-z), above (-y), the face's right
AMBIENT = 0.55  # shaded colour = base · (AMBIENT + (1 - AMBIENT) · max(0, n·l))
IRIS_DEG, PUPIL_DEG = 31.0, 12.0  # angular radii about the eyeball's forward axis
EYEBALL_FRONT_DEG = 80.0  # only this much of each eyeball (about its forward axis) is sampled
GAZE_YAW_DEG, GAZE_PITCH_DEG = 30.0, 25.0  # eyeball rotation at eyeLook* = 1
BROW_HALF_WIDTH = 0.015  # canonical units either side of the brow landmark polyline (frontal view)
DISC_THICKNESS = 0.3  # Gaussian thickness along the normal, relative to its width
DISC_COVER = 0.75  # tangent std = this x sqrt(area per sample): overlap without holes
OPACITY = 0.95
DETAIL_GAIN = 3.0  # contrast of the SR detail channels (see _color_readout)
DETAIL_REFERENCE = (0.72, 0.60, 0.52)  # about the mean shaded skin colour
BLEND_NEAR, BLEND_FAR = 0.3, 0.5  # λ_exp radii: the blendshapes move points up to ~0.45 from a landmark
EYELID_MOTION = 0.005  # canonical units: vertices a full blink moves more than this are eyelid
SR_DETAIL_GAIN = 20.0  # SR loss weight on fine detail (see train_sr)


@dataclass(frozen=True)
class MannequinSpec:
    """Sizes and training lengths of the build (the defaults make the demo avatar)."""

    seed: int = 0
    samples: tuple[tuple[str, int], ...] = (
        ("face", 7000), ("eyelids", 400), ("head_neck", 3000), ("mouth_socket", 1200),
        ("eye_socket_left", 150), ("eye_socket_right", 150), ("eyeball_left", 450), ("eyeball_right", 450))
    resolution: int = 64  # render side; the SR output is 4x
    fov_deg: float = 20.0
    view_height: float = 1.15  # canonical units visible top to bottom at the anchor distance
    deform_steps: int = 4000
    deform_batch: int = 2048  # (point, expression) pairs per step
    deform_lr: float = 5e-3
    sr_samples: int = 60  # rendered training pairs
    sr_steps: int = 1000
    sr_batch: int = 2
    sr_lr: float = 5e-3
    sr_candidates: int = 2  # SR initialisations trained; the lowest final L1 is kept


def mannequin_config(spec: MannequinSpec | None = None) -> ModelConfig:
    """The model sizes: small MLPs (a fast generator on CPU), wide λ radii, 64² -> 256² SR."""
    return ModelConfig(
        name="mannequin", feature_dim=16, color_channels=32,
        exp_color_hidden=(4,), pose_color_hidden=(4,), exp_attributes_hidden=(4,),
        pose_attributes_hidden=(4,), exp_deform_hidden=(128, 128, 128), pose_deform_hidden=(4,),
        pos_freqs=8, blend_near=BLEND_NEAR, blend_far=BLEND_FAR,
        num_points=sum(n for _, n in (spec or MannequinSpec()).samples), num_mouth_points=0, sr_channels=8)


def head_size(data: FaceModelData) -> float:
    """Bounding-box diagonal of the mean head (all face-model vertices), canonical units."""
    return float(np.linalg.norm(data.neutral.max(0) - data.neutral.min(0)))


@dataclass
class MannequinSurface:
    """Where the Gaussians sit on the face model, and how that surface moves."""

    triangles: np.ndarray  # (N, 3) vertex ids
    barycentric: np.ndarray  # (N, 3)
    region: np.ndarray  # (N,) index into data.region_names
    points: np.ndarray  # (N, 3) on the mean head
    normals: np.ndarray  # (N, 3) unit, outward (into the cavity for the mouth socket)
    area: np.ndarray  # (N,) surface area each sample stands for
    basis: torch.Tensor  # (53, N, 3) expression basis at the samples
    eye_centers: np.ndarray  # (2, 3) left, right eyeball centres
    eye_mask: np.ndarray  # (2, N) bool: samples on the left, right eyeball

    def deformed(self, expression: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 53) -> (B, N, 3): the samples on the ICT mesh with these expressions (identity 0),
        with the eyeballs turned by the gaze weights. With `index` (B, M): only those samples."""
        e = expression.to(torch.float32)
        if index is None:
            pts = torch.as_tensor(self.points) + torch.einsum("bk,knc->bnc", e, self.basis)
            masks = [torch.as_tensor(m).expand(len(e), -1) for m in self.eye_mask]
        else:
            basis = self.basis.permute(1, 0, 2)[index]  # (B, M, 53, 3)
            pts = torch.as_tensor(self.points)[index] + torch.einsum("bk,bmkc->bmc", e, basis)
            masks = [torch.as_tensor(m)[index] for m in self.eye_mask]
        for side, mask in enumerate(masks):
            c = torch.as_tensor(self.eye_centers[side])
            R = gaze_rotation(e, side)  # (B, 3, 3)
            rotated = (pts - c) @ R.transpose(1, 2) + c
            pts = torch.where(mask[..., None], rotated, pts)
        return pts


def gaze_rotation(expression: torch.Tensor, side: int) -> torch.Tensor:
    """(B, 53) -> (B, 3, 3) eyeball rotation; side 0 = the subject's left eye (at +x).

    Canonical axes: the face looks along -z, +y is down. Looking to the subject's left turns the
    forward axis towards +x (yaw), looking up towards -y (pitch). R = R_y(-yaw) R_x(-pitch)
    takes (0, 0, -1) to (sin yaw cos pitch, -sin pitch, -cos yaw cos pitch).
    """
    def w(name: str) -> torch.Tensor:
        return expression[:, expression_index(name)]

    s = "L" if side == 0 else "R"
    toward_left = (w("eyeLookOut_L") - w("eyeLookIn_L")) if side == 0 else (w("eyeLookIn_R") - w("eyeLookOut_R"))
    yaw = math.radians(GAZE_YAW_DEG) * toward_left
    pitch = math.radians(GAZE_PITCH_DEG) * (w(f"eyeLookUp_{s}") - w(f"eyeLookDown_{s}"))
    cy, sy, cp, sp = torch.cos(yaw), torch.sin(yaw), torch.cos(pitch), torch.sin(pitch)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    ry = torch.stack([torch.stack([cy, zero, -sy], -1), torch.stack([zero, one, zero], -1),
                      torch.stack([sy, zero, cy], -1)], -2)  # R_y(-yaw)
    rx = torch.stack([torch.stack([one, zero, zero], -1), torch.stack([zero, cp, sp], -1),
                      torch.stack([zero, -sp, cp], -1)], -2)  # R_x(-pitch)
    return ry @ rx


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # area-weighted, outward
    n = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(n, faces[:, k], face_n)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _sphere_center(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere centre: |p|² = 2 p·c + (r² - |c|²) is linear in c."""
    A = np.c_[2 * points, np.ones(len(points))]
    sol, *_ = np.linalg.lstsq(A, (points ** 2).sum(1), rcond=None)
    return sol[:3]


def sample_surface(data: FaceModelData, spec: MannequinSpec) -> MannequinSurface:
    """Area-uniform samples per region (see the module docstring, step 1)."""
    rng = np.random.default_rng(spec.seed)
    V = data.neutral.astype(np.float64)
    faces = data.faces
    vnormals = _vertex_normals(V, faces)
    tri = V[faces]
    face_area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face_region = np.searchsorted(data.region_ranges[:, 1], faces[:, 0], side="right")
    eye_centers = np.stack([_sphere_center(V[data.region(f"eyeball_{s}")]) for s in ("left", "right")])
    forward = np.array([0.0, 0.0, -1.0])

    blink = data.expression_basis[[expression_index("eyeBlink_L"), expression_index("eyeBlink_R")]]
    lid_vertex = np.linalg.norm(blink, axis=-1).max(0) > EYELID_MOTION
    chosen_tris, barys, regions, areas = [], [], [], []
    for name, count in spec.samples:
        r = data.region_names.index("face" if name == "eyelids" else name)
        eligible = face_region == r
        if name == "eyelids":
            eligible &= lid_vertex[faces].any(1)
        if name.startswith("eyeball_"):
            c = eye_centers[0 if name.endswith("left") else 1]
            d = tri.mean(1) - c
            cos = d @ forward / np.linalg.norm(d, axis=1)
            eligible &= cos > math.cos(math.radians(EYEBALL_FRONT_DEG))
        ids = np.flatnonzero(eligible)
        p = face_area[ids] / face_area[ids].sum()
        pick = rng.choice(ids, size=count, p=p)
        u, v = rng.random(count), rng.random(count)
        flip = u + v > 1  # fold the unit square onto the triangle: uniform barycentrics
        u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
        chosen_tris.append(faces[pick])
        barys.append(np.stack([1 - u - v, u, v], 1))
        regions.append(np.full(count, r))
        areas.append(np.full(count, face_area[ids].sum() / count))
    triangles = np.concatenate(chosen_tris)
    bary = np.concatenate(barys)
    region = np.concatenate(regions)
    points = np.einsum("nk,nkc->nc", bary, V[triangles])
    normals = np.einsum("nk,nkc->nc", bary, vnormals[triangles])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    basis = np.einsum("nk,enkc->enc", bary, data.expression_basis[:, triangles].astype(np.float64))
    names = [data.region_names[i] for i in region]
    eye_mask = np.stack([np.array([n == f"eyeball_{s}" for n in names]) for s in ("left", "right")])
    return MannequinSurface(triangles=triangles, barycentric=bary.astype(np.float32), region=region,
                            points=points.astype(np.float32), normals=normals.astype(np.float32),
                            area=np.concatenate(areas).astype(np.float32),
                            basis=torch.as_tensor(basis, dtype=torch.float32),
                            eye_centers=eye_centers.astype(np.float32), eye_mask=eye_mask)


def _inside(polygon: np.ndarray, xy: np.ndarray) -> np.ndarray:
    from matplotlib.path import Path as PolyPath

    return PolyPath(polygon).contains_points(xy)


def _segment_distance(xy: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """(N, 2) points, (K, 2) polyline -> (N,) distance to it."""
    best = np.full(len(xy), np.inf)
    for a, b in zip(polyline[:-1], polyline[1:]):
        t = np.clip(((xy - a) @ (b - a)) / max((b - a) @ (b - a), 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(xy - (a + t[:, None] * (b - a)), axis=1))
    return best


def material_classes(data: FaceModelData, surface: MannequinSurface) -> np.ndarray:
    """(N,) index into CLASSES for every sample."""
    names = np.array(data.region_names)[surface.region]
    lmk = data.neutral[data.landmarks68]
    xy = surface.points[:, :2]
    cls = np.zeros(len(names), np.int64)  # skin
    front = surface.normals[:, 2] < 0.2  # the painted features sit on the front of the face
    face = names == "face"
    lips = face & front & _inside(lmk[48:60, :2], xy)
    brow = np.zeros_like(face)
    for brow_ids in (slice(17, 22), slice(22, 27)):
        brow |= face & front & (surface.points[:, 2] < lmk[brow_ids, 2].max() + 0.05) & (
            _segment_distance(xy, lmk[brow_ids, :2]) < BROW_HALF_WIDTH)
    cls[lips] = CLASSES.index("lips")
    cls[brow] = CLASSES.index("brow")
    cls[names == "mouth_socket"] = CLASSES.index("mouth")
    cls[np.char.startswith(names, "eye_socket")] = CLASSES.index("socket")
    for side in range(2):
        mask = surface.eye_mask[side]
        d = surface.points[mask] - surface.eye_centers[side]
        angle = np.degrees(np.arccos(np.clip(-d[:, 2] / np.linalg.norm(d, axis=1), -1, 1)))
        cls[np.flatnonzero(mask)] = np.where(
            angle < PUPIL_DEG, CLASSES.index("pupil"),
            np.where(angle < IRIS_DEG, CLASSES.index("iris"), CLASSES.index("sclera")))
    return cls


def sample_colors(surface: MannequinSurface, classes: np.ndarray) -> np.ndarray:
    """(N, 3) RGB in [0, 1]: the class colour; skin, lips and brows with baked Lambert shading."""
    base = np.array([COLORS[c] for c in CLASSES], np.float32)[classes]
    light = np.asarray(LIGHT_DIR, np.float32) / np.linalg.norm(LIGHT_DIR)
    lambert = np.clip(surface.normals @ light, 0, 1)
    shaded = np.isin(classes, [CLASSES.index(c) for c in ("skin", "lips", "brow")])
    shade = np.where(shaded, AMBIENT + (1 - AMBIENT) * lambert, 1.0)
    return np.clip(base * shade[:, None], 0.0, 1.0)


def _disc_rotations(normals: np.ndarray) -> np.ndarray:
    """(N, 4) w-x-y-z quaternions whose local z axis is the normal (Gaussian scale z = thickness)."""
    n = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    t1 = np.cross(helper, n)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    R = np.stack([t1, t2, n], axis=2)  # columns: local x, y, z in world
    from scipy.spatial.transform import Rotation

    xyzw = Rotation.from_matrix(R).as_quat()
    return np.c_[xyzw[:, 3], xyzw[:, :3]].astype(np.float32)


def random_poses(count: int, generator: torch.Generator, anchor: torch.Tensor,
                 max_deg: float = 20.0, max_shift: float = 0.05) -> torch.Tensor:
    """(count, 6) head poses near the anchor: rotations up to `max_deg` per axis, small shifts."""
    rot = (torch.rand(count, 3, generator=generator) * 2 - 1) * math.radians(max_deg)
    shift = (torch.rand(count, 3, generator=generator) * 2 - 1) * max_shift
    return torch.cat([rot, anchor + shift], 1)


def _set_closed_form_mlps(model: GaussianHeadModel, num_classes: int) -> None:
    """Zero pose deformation and attribute offsets; colour = linear read-out of tanh(F0)."""
    with torch.no_grad():
        for mlp in (model.pose_deform_mlp, model.exp_attributes_mlp, model.pose_attributes_mlp):
            mlp.zero_output()
        for mlp in (model.exp_color_mlp, model.pose_color_mlp):
            _color_readout(mlp, num_classes)


def _color_readout(mlp: PointMLP, num_classes: int) -> None:
    """RGB and class channels: c = 0.5 + 0.5·tanh(F0)[c]; then 3 detail channels
    1 + DETAIL_GAIN·(rgb - DETAIL_REFERENCE); the rest 0.

    The detail channels sit near the background's 1.0 on skin, so after the SR CNN's instance
    norm they carry the shading and the features (brows, iris, lips) at full contrast instead of
    being drowned by the head/background step of the other channels.

    PointMLP concatenates [hidden, raw input] in front of layer `skip_layer`; for these one-
    hidden-layer MLPs that is the output layer, and the raw input starts with tanh(F0).
    """
    last = mlp.layers[-1]
    if mlp.skip_layer != len(mlp.layers) - 1:
        raise ValueError("the colour read-out needs the raw input re-injected before the output layer")
    hidden = mlp.dims[-2]
    last.weight.zero_()
    last.bias.zero_()
    channels = 3 + num_classes
    last.weight[torch.arange(channels), hidden + torch.arange(channels)] = 0.5
    last.bias[:channels] = 0.5
    detail = channels + torch.arange(3)
    last.weight[detail, hidden + torch.arange(3)] = 0.5 * DETAIL_GAIN
    last.bias[detail] = 1 + DETAIL_GAIN * (0.5 - torch.tensor(DETAIL_REFERENCE))


def _features(colors: np.ndarray, classes: np.ndarray, feature_dim: int, generator: torch.Generator) -> torch.Tensor:
    """F0 (pre-tanh): tanh(F0)[:3] = 2·rgb - 1, tanh(F0)[3:3+K] = ±0.96 one-hot classes, small noise after."""
    n = len(colors)
    f = 0.1 * torch.randn(n, feature_dim, generator=generator)
    f[:, :3] = torch.atanh(torch.as_tensor(2 * colors - 1).clamp(-0.96, 0.96))
    onehot = torch.nn.functional.one_hot(torch.as_tensor(classes), len(CLASSES)).float()
    f[:, 3:3 + len(CLASSES)] = torch.atanh(torch.tensor(0.96)) * (2 * onehot - 1)
    return f


def mannequin_camera(data: FaceModelData, spec: MannequinSpec) -> tuple[Camera, torch.Tensor]:
    """The render camera (identity extrinsics, OpenCV axes) and the anchor translation that
    frames the head from the top of the skull to just below the chin."""
    lmk = data.neutral[data.landmarks68]
    top, chin = float(data.neutral[:, 1].min()), float(lmk[:, 1].max())
    center_y = 0.5 * (top + chin) + 0.03  # a little neck below the chin
    distance = 0.5 * spec.view_height / math.tan(math.radians(spec.fov_deg / 2))
    camera = Camera.looking_at_origin(spec.resolution, spec.resolution, spec.fov_deg, distance=0.0)
    anchor = torch.tensor([0.0, -center_y, distance], dtype=torch.float32)
    return camera, anchor


def render_pairs(avatar: Avatar, count: int, generator: torch.Generator,
                 progress: Callable[[int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(count, 32, R, R) feature renders and (count, 3, 4R, 4R) RGB renders of the same frames."""
    from avatar.raster import render_gaussians

    model, camera = avatar.model, avatar.camera
    hi = camera.scaled(SR_FACTOR)
    background = torch.ones(model.config.color_channels)
    expressions = random_expressions(count, generator)
    poses = random_poses(count, generator, avatar.anchor_translation)
    low, high = [], []
    with torch.no_grad():
        for e, p in zip(expressions, poses):
            g = model(e, p)
            low.append(render_gaussians(g, camera, background).image.permute(2, 0, 1))
            g.features = g.features[:, :3].contiguous()
            high.append(render_gaussians(g, hi, background[:3]).image.permute(2, 0, 1))
            if progress is not None:
                progress(1)
    return torch.stack(low), torch.stack(high)


def train_sr(sr: SuperResolution, low: torch.Tensor, high: torch.Tensor, spec: MannequinSpec,
             generator: torch.Generator, progress: Callable[[int], None] | None = None) -> float:
    """Weighted L1 training of the SR CNN on render pairs; returns the final (unweighted) mean L1
    over all pairs.

    Irises, pupils and lid lines cover a few hundred of the 65k output pixels, so a plain L1 is
    content to paint smooth skin over them. Each pixel weighs 1 + SR_DETAIL_GAIN × the target's
    local detail (its difference from its 5×5 mean, spread over 5×5), normalised to mean 1 per
    image. Higher gains tint the flat background.
    """
    with torch.no_grad():
        detail = (high - F.avg_pool2d(high, 5, 1, 2, count_include_pad=False)).abs().sum(1, keepdim=True)
        weight = 1 + SR_DETAIL_GAIN * F.max_pool2d(detail, 5, 1, 2)
        weight = weight / weight.mean((2, 3), keepdim=True)
    opt = torch.optim.Adam(sr.parameters(), lr=spec.sr_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.sr_lr, total_steps=spec.sr_steps, pct_start=0.1)
    for _ in range(spec.sr_steps):
        idx = torch.randint(0, len(low), (spec.sr_batch,), generator=generator)
        loss = ((sr(low[idx]) - high[idx]).abs() * weight[idx]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(1)
    with torch.no_grad():
        return float(torch.cat([F.l1_loss(sr(low[i:i + 4]), high[i:i + 4], reduction="none").flatten()
                                for i in range(0, len(low), 4)]).mean())


def initial_model(data: FaceModelData, spec: MannequinSpec, config: ModelConfig,
                  generator: torch.Generator) -> tuple[GaussianHeadModel, MannequinSurface]:
    """Neutral Gaussians (surface discs, colours, P0 = the 68 ICT landmarks) and the MLPs that are
    set in closed form; f_def^exp is still untrained."""
    surface = sample_surface(data, spec)
    classes = material_classes(data, surface)
    colors = sample_colors(surface, classes)
    landmarks = data.neutral[data.landmarks68]
    features = _features(colors, classes, config.feature_dim, generator)
    model = GaussianHeadModel.from_points(config, surface.points, landmarks, features=features.numpy(),
                                          seed=spec.seed)
    with torch.no_grad():
        width = DISC_COVER * np.sqrt(surface.area)
        scales = np.stack([width, width, DISC_THICKNESS * width], 1)
        model.log_scales.copy_(torch.as_tensor(np.log(scales), dtype=torch.float32))
        model.rotations.copy_(torch.as_tensor(_disc_rotations(surface.normals)))
        model.opacity_logits.fill_(math.log(OPACITY / (1 - OPACITY)))
    _set_closed_form_mlps(model, len(CLASSES))
    return model, surface


@dataclass
class MannequinBuild:
    avatar: Avatar
    seconds: float


def build_mannequin(spec: MannequinSpec = MannequinSpec(), data: FaceModelData | None = None,
                    progress: bool = True) -> MannequinBuild:
    """Build the mannequin avatar in memory (see the module docstring); about 2 min on
    2 CPU cores."""
    from tqdm import tqdm

    start = time.perf_counter()
    data = load_face_model_data() if data is None else data
    generator = torch.Generator().manual_seed(spec.seed)
    config = mannequin_config(spec)
    total = spec.deform_steps + spec.sr_samples + spec.sr_candidates * spec.sr_steps
    # fork_rng: the MLP and SR initialisations are seeded without touching the caller's RNG.
    with torch.random.fork_rng(), tqdm(total=total, desc="mannequin", unit="step", disable=not progress) as bar:
        torch.manual_seed(spec.seed)
        model, surface = initial_model(data, spec, config, generator)
        bar.set_postfix_str("fitting f_def^exp")
        deform_error = fit_expression_deformation(model, surface, spec.deform_steps, spec.deform_batch,
                                                  spec.deform_lr, generator, bar.update)
        camera, anchor = mannequin_camera(data, spec)
        avatar = Avatar(model.eval(), SuperResolution.from_config(config), camera, anchor)
        bar.set_postfix_str("rendering SR pairs")
        low, high = render_pairs(avatar, spec.sr_samples, generator, bar.update)
        # From some initialisations the small SR CNN settles in a poor optimum that paints
        # flat tones (lips and shading lost) at an L1 only ~20 % higher: train a few, keep the best.
        candidates = []
        for k in range(spec.sr_candidates):
            bar.set_postfix_str(f"training SR {k + 1}/{spec.sr_candidates}")
            sr = SuperResolution.from_config(config)
            candidates.append((train_sr(sr, low, high, spec, generator, bar.update), k, sr))
        sr_l1, _, avatar.sr = min(candidates, key=lambda c: (c[0], c[1]))
    avatar.sr.eval()
    seconds = time.perf_counter() - start
    size = head_size(data)
    avatar.metadata = AvatarMetadata(face_model_checksum=data.checksum, training={
        "kind": "mannequin", "mannequin_version": MANNEQUIN_VERSION, "seed": spec.seed,
        "build_seconds": round(seconds, 1), "deform_train_error": deform_error,
        "deform_train_error_head_fraction": deform_error / size, "sr_l1": sr_l1, "head_size": size})
    return MannequinBuild(avatar=avatar, seconds=seconds)
