"""Fitting the ICT 3DMM to 2D landmarks: identity once per person, then pose and expression per frame.

Model. A tracked 2D point k sits on the ICT surface at a barycentric combination of three
vertices, so in canonical space it is linear in the coefficients:
    X_k(a, e) = n_k + A_k a + B_k e        (a: 100 identity, e: 53 expression weights)
and in the image it is the pinhole projection of R X_k + t (R from axis-angle, canonical head ->
camera). Only these K points are ever evaluated, so an iteration costs a few small matmuls.

Cost (dimensionless, see fit_config.py): the Huber-robust mean over points of the squared 2D
residual divided by the observed face size, plus L2 priors: per-channel on e, on e - e_previous
(a light temporal term), and on a. Expression is bounded to [0, 1].

Solver. Levenberg-Marquardt with analytic Jacobians: rotation is updated by a right-multiplied
increment R <- R exp(w) (a local chart, so nothing degenerates near any angle), translation and
coefficients additively. Bounds are handled by projection with an active set: a weight sitting
on a bound whose gradient pushes it outwards is held for that step, the others are solved for,
then clamped. Each step is accepted only if the cost falls (else the damping grows). Frames are
solved in batch where they are independent (identity initialisation); the identity fit solves
all its frames jointly with the shared identity in one dense normal matrix (100 + 59 F unknowns).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.rotations import axis_angle_to_matrix, matrix_to_rotvec, rotvec_to_matrix
from tracking.face_model import CanonicalLandmarks, FaceModel, FaceModelData
from tracking.fit_config import FitConfig
from tracking.params import EXPRESSION_NAMES, N_EXPRESSION, N_IDENTITY
from tracking.pinhole import PinholeCamera

# Single precision: twice as fast for the normal matrix and accurate to far below a pixel here.
DTYPE = torch.float32
N_POSE = 6
N_FRAME = N_POSE + N_EXPRESSION


@dataclass
class FrameFit:
    """The fitted pose and expression of one frame (identity is held by the fitter)."""

    rotation: np.ndarray  # (3,) axis-angle, canonical head -> camera
    translation: np.ndarray  # (3,) canonical units
    expression: np.ndarray  # (53,) in [0, 1]
    rms_error: float  # RMS 2D point residual after the fit, in observed face sizes


@dataclass
class _State:
    """B frames' parameters during a solve, in torch."""

    R: torch.Tensor  # (B, 3, 3)
    t: torch.Tensor  # (B, 3)
    e: torch.Tensor  # (B, 53)

    def select(self, keep: torch.Tensor, other: "_State") -> "_State":
        """Per frame: self where keep, else other."""
        return _State(torch.where(keep[:, None, None], self.R, other.R),
                      torch.where(keep[:, None], self.t, other.t),
                      torch.where(keep[:, None], self.e, other.e))


@dataclass
class _Observation:
    """Observed points of B frames in normalised image coordinates, with their face size."""

    points: torch.Tensor  # (B, K, 2): (pixel - principal point) / focal
    inv_scale: torch.Tensor  # (B, 1): 1 / face size (RMS spread of the points) in the same units
    camera: PinholeCamera


@dataclass
class _Evaluation:
    """Everything computed at one state that the next linearisation reuses."""

    X: torch.Tensor  # (B, K, 3) canonical points
    projected: torch.Tensor  # (B, K, 2) normalised image coordinates
    inv_z: torch.Tensor  # (B, K)
    r: torch.Tensor  # (B, K, 2) residual in face sizes
    norm: torch.Tensor  # (B, K) its length per point
    cost: torch.Tensor  # (B,)

    def select(self, keep: torch.Tensor, other: "_Evaluation") -> "_Evaluation":
        return _Evaluation(*(torch.where(keep.view(-1, *([1] * (a.ndim - 1))), a, b)
                             for a, b in zip(vars(self).values(), vars(other).values())))


class FaceFitter:
    """Fits identity, head pose and expression to K tracked 2D points lying on the ICT surface.

    vertex_ids (K, 3) and barycentric (K, 3) place each point on the mesh of `data`; weights (K,)
    say how much each point counts (e.g. less for points that slide along the contour).
    """

    def __init__(self, data: FaceModelData, vertex_ids: np.ndarray, barycentric: np.ndarray,
                 weights: np.ndarray, config: FitConfig = FitConfig()) -> None:
        vertex_ids = np.asarray(vertex_ids, np.int64)
        barycentric = np.asarray(barycentric, np.float64)
        weights = np.asarray(weights, np.float64)
        k = vertex_ids.shape[0]
        if vertex_ids.shape != (k, 3) or barycentric.shape != (k, 3) or weights.shape != (k,):
            raise ValueError(f"correspondence shapes disagree: vertex_ids {vertex_ids.shape}, "
                             f"barycentric {barycentric.shape}, weights {weights.shape}")
        if k < 6:
            raise ValueError(f"need at least 6 corresponding points, got {k}")
        self.config = config
        self.num_points = k
        # One FaceModel over the touched vertices, then the barycentric combination folded into
        # the bases so evaluation never touches vertex indices again.
        ids, inverse = np.unique(vertex_ids.ravel(), return_inverse=True)
        sub = FaceModel.from_data(data, ids)
        combine = np.zeros((k, ids.size))
        np.add.at(combine, (np.repeat(np.arange(k), 3), inverse), barycentric.ravel())
        combine = torch.as_tensor(combine)
        u = ids.size
        self._neutral = (combine @ sub.neutral.double()).to(DTYPE)
        exp_basis = combine @ sub.expression_basis.double().reshape(-1, u, 3)
        id_basis = combine @ sub.identity_basis.double().reshape(-1, u, 3)
        self._exp_basis = exp_basis.reshape(N_EXPRESSION, -1).to(DTYPE)
        self._id_basis = id_basis.reshape(N_IDENTITY, -1).to(DTYPE)
        self.canonical_landmarks = CanonicalLandmarks(data)
        # The same bases laid out (3, K, n) for _basis_jacobian.
        self._exp_c = self._exp_basis.reshape(N_EXPRESSION, k, 3).permute(2, 1, 0).contiguous()
        self._id_c = self._id_basis.reshape(N_IDENTITY, k, 3).permute(2, 1, 0).contiguous()
        w = torch.as_tensor(weights, dtype=DTYPE)
        self._point_weight = w / w.sum()  # (K,), sums to 1: the data term is a weighted mean
        self._prior = torch.as_tensor(config.expression_prior_weights(), dtype=DTYPE)
        frozen = torch.tensor([n in config.frozen_expressions for n in EXPRESSION_NAMES])
        self._free_expression = ~frozen
        self._free_expression_f = self._free_expression.to(DTYPE)
        self.identity = torch.zeros(N_IDENTITY, dtype=DTYPE)
        self._base = self._neutral.clone()  # canonical points of the current identity, e = 0
        self._eye23 = torch.eye(3, dtype=DTYPE)[None, :2, None, :]
        self._ez = torch.tensor([0.0, 0.0, 1.0], dtype=DTYPE)
        # Scalars as 0-d tensors: an op with a Python float costs an extra conversion each time.
        scalar = lambda v: torch.tensor(v, dtype=DTYPE)
        self._robust, self._one = scalar(config.robust_scale), scalar(1.0)
        self._temporal = torch.full((N_EXPRESSION,), config.temporal_prior, dtype=DTYPE)
        self._third, self._four = scalar(1 / 3), scalar(4.0)

    # ---------------------------------------------------------------- public API

    def set_identity(self, identity: np.ndarray) -> None:
        self.identity = torch.as_tensor(np.asarray(identity), dtype=DTYPE).reshape(N_IDENTITY)
        self._base = self._neutral + (self.identity @ self._id_basis).reshape(-1, 3)

    def fit_identity(self, frames: list[np.ndarray], camera: PinholeCamera) -> list[FrameFit]:
        """Fit the identity jointly over `frames` ((K, 2) points each); it is kept for later frames.

        Returns each frame's own pose and expression from the joint solve.
        """
        if not frames:
            raise ValueError("fit_identity needs at least one frame")
        obs = self._observation(np.stack(frames), camera)
        self.set_identity(np.zeros(N_IDENTITY))
        # Person-specific shape must go into the identity, not into expressions that happen to
        # mimic it (cheekPuff and mouthPucker at ~0.7 on neutral faces otherwise): the expression
        # prior is stronger while the identity is solved, then the frames are refitted with the
        # normal prior for their own expressions.
        normal_prior = self._prior
        self._prior = normal_prior * self.config.identity_expression_prior_scale
        try:
            state, _ = self._solve_frames(self._initial_pose(obs, len(frames)), obs, None,
                                          self.config.cold_iterations)
            identity, state = self._solve_joint(state, obs)
        finally:
            self._prior = normal_prior
        self.set_identity(identity.numpy())
        state, ev = self._solve_frames(state, obs, None, self.config.cold_iterations)
        return self._frame_fits(state, ev)

    def fit_frame(self, points: np.ndarray, camera: PinholeCamera,
                  previous: FrameFit | None = None) -> FrameFit:
        """Pose and expression of one frame ((K, 2) points), warm-started from `previous`."""
        obs = self._observation(points[None], camera)
        if previous is None:
            state = self._initial_pose(obs, 1)
            prev_e, iterations = None, self.config.cold_iterations
        else:
            state = _State(torch.from_numpy(rotvec_to_matrix(previous.rotation).astype(np.float32))[None],
                           torch.from_numpy(np.asarray(previous.translation, np.float32))[None],
                           torch.from_numpy(np.asarray(previous.expression, np.float32))[None])
            prev_e, iterations = state.e, self.config.frame_iterations
        return self._frame_fits(*self._solve_frames(state, obs, prev_e, iterations))[0]

    def landmarks68(self, fit: FrameFit) -> np.ndarray:
        """The fitted model's 68 landmarks in canonical space (identity + expression, unposed)."""
        return self.canonical_landmarks(self.identity.numpy(), np.asarray(fit.expression)[None])[0]

    def project_landmarks68(self, fit: FrameFit, camera: PinholeCamera) -> np.ndarray:
        """The fitted 68 landmarks in the image, (68, 2) pixels."""
        r = axis_angle_to_matrix(torch.as_tensor(fit.rotation, dtype=DTYPE)).numpy()
        return camera.project(self.landmarks68(fit).astype(np.float64) @ r.T + fit.translation)

    # ---------------------------------------------------------------- model and residuals

    def _observation(self, points: np.ndarray, camera: PinholeCamera) -> _Observation:
        p = np.asarray(points, np.float32)
        if p.ndim != 3 or p.shape[1:] != (self.num_points, 2):
            raise ValueError(f"expected ({self.num_points}, 2) points per frame, got {p.shape[1:]}")
        if not np.isfinite(p).all():
            raise ValueError("observed points contain NaN or inf")
        # Work in normalised image coordinates ((pixel - centre) / focal): fewer operations per step.
        normalised = (p - np.float32(camera.principal_point)) / np.float32(camera.focal)
        spread = np.sqrt(np.square(normalised - normalised.mean(1, keepdims=True)).sum(-1).mean(1))
        return _Observation(torch.from_numpy(normalised),
                            torch.from_numpy(1.0 / np.maximum(spread, 1e-9)[:, None]), camera)

    def _evaluate(self, base: torch.Tensor, s: _State, obs: _Observation,
                  prev_e: torch.Tensor | None) -> _Evaluation:
        """Model points, residuals and the per-frame cost (B,) at state s."""
        bsz = s.e.shape[0]
        X = torch.addmm(base.reshape(base.shape[0], -1), s.e, self._exp_basis).view(bsz, -1, 3)
        P = torch.baddbmm(s.t[:, None], X, s.R.mT)
        inv_z = P[..., 2].reciprocal()
        projected = P[..., :2] * inv_z[..., None]
        r = (projected - obs.points).mul_(obs.inv_scale[..., None])
        norm = torch.linalg.vector_norm(r, dim=-1)
        # Huber: n^2 below the threshold d, 2 d n - d^2 above = n^2 - (n - d)^2.
        huber = norm.square() - (norm - self._robust).clamp_(min=0).square_()
        cost = huber @ self._point_weight + s.e.square() @ self._prior
        if prev_e is not None:
            cost += (s.e - prev_e).square_() @ self._temporal
        return _Evaluation(X, projected, inv_z, r, norm, cost)

    def _linearise(self, ev: _Evaluation, s: _State, obs: _Observation, prev_e: torch.Tensor | None):
        """Gauss-Newton normal matrix (B, 59, 59) and gradient (B, 59) over [rotation, translation,
        expression] with Huber IRLS weights and the expression priors. Also returns, for the identity
        fit, the Jacobian (B, 2K, 59), the weighted residual (B, 2K, 1) and d residual / d canonical
        point (B, 2, K, 3).

        Rows are ordered (image axis, point). For a camera point P = (x, y, z) projecting to
        (px, py) = (x/z, y/z): d p_i / dP = (e_i - p_i e_z) / z, so for a canonical-space direction
        D moved by R: d p_i = ((R D)_i - p_i (R D)_z) / z. Every Jacobian block below is that formula.
        """
        bsz, k = ev.X.shape[:2]
        irls = (self._robust / ev.norm).clamp_(max=1.0)  # Huber's IRLS weight
        w = (irls * self._point_weight).sqrt_()  # (B, K)
        wz = (w * ev.inv_z).mul_(obs.inv_scale)[:, None, :, None]  # (B, 1, K, 1): weight / (size z)
        p = ev.projected.transpose(1, 2).unsqueeze(-1)  # (B, 2, K, 1)
        jac = torch.empty(bsz, 2, k, N_FRAME, dtype=DTYPE)
        # Translation moves P directly.
        torch.mul(self._eye23 - p * self._ez, wz, out=jac[..., 3:6])
        # d residual / d canonical point (rows of R mixed as above); a right increment R exp(w)
        # moves a point by -R [X]x w, so each such row m gives the rotation row X x m.
        m = torch.addcmul(s.R[:, :2, None, :], p, s.R[:, None, None, 2, :], value=-1).mul_(wz)
        jac[..., :3] = torch.linalg.cross(ev.X[:, None].expand_as(m), m)
        self._basis_jacobian(self._exp_c, m, out=jac[..., N_POSE:])
        jac = jac.view(bsz, 2 * k, N_FRAME)
        r = (ev.r * w[..., None]).transpose(1, 2).reshape(bsz, 2 * k, 1)
        H = jac.mT @ jac
        g = (jac.mT @ r).view(bsz, N_FRAME)
        H.diagonal(dim1=-2, dim2=-1)[:, N_POSE:] += self._prior if prev_e is None else self._prior + self._temporal
        g_e = g[:, N_POSE:]
        g_e.addcmul_(self._prior, s.e)
        if prev_e is not None:
            g_e.addcmul_(self._temporal, s.e - prev_e)
        return H, g, jac, r, m

    @staticmethod
    def _basis_jacobian(basis: torch.Tensor, m: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """d residual / d coefficients of a linear basis laid out (3, K, n), given d residual /
        d canonical point m (B, 2, K, 3): (B, 2, K, n). Three fused multiply-adds, no batched GEMM."""
        out = torch.mul(m[..., 0:1], basis[0], out=out)
        out.addcmul_(m[..., 1:2], basis[1])
        return out.addcmul_(m[..., 2:3], basis[2])

    # ---------------------------------------------------------------- solvers

    def _initial_pose(self, obs: _Observation, count: int) -> _State:
        """Rigid pose of the current identity at neutral expression, by PnP per frame."""
        model = self._base.numpy().astype(np.float64)
        rots, trans = [], []
        for points in obs.points.numpy().astype(np.float64):
            # Normalised coordinates: the camera matrix is the identity.
            ok, rvec, tvec = cv2.solvePnP(model, points, np.eye(3), None, flags=cv2.SOLVEPNP_SQPNP)
            if not ok or tvec[2, 0] <= 0:
                raise ValueError("could not find an initial head pose for these points")
            rots.append(rvec[:, 0])
            trans.append(tvec[:, 0])
        R = axis_angle_to_matrix(torch.as_tensor(np.stack(rots), dtype=DTYPE))
        return _State(R, torch.as_tensor(np.stack(trans), dtype=DTYPE),
                      torch.zeros(count, N_EXPRESSION, dtype=DTYPE))

    def _free_mask(self, e: torch.Tensor, g_e: torch.Tensor) -> torch.Tensor:
        """Expression weights that may move this step: not frozen, not pushed against a bound."""
        pinned = ((e <= 0) & (g_e > 0)) | ((e >= 1) & (g_e < 0))
        return self._free_expression & ~pinned

    def _damped_solve(self, H: torch.Tensor, g: torch.Tensor, free: torch.Tensor,
                      damping: torch.Tensor) -> torch.Tensor:
        """Solve (H + damping diag H) step = -g over the free unknowns; held unknowns get 0."""
        f = free.to(DTYPE)
        Hf = H * (f.unsqueeze(-1) * f.unsqueeze(-2))
        Hf.diagonal(dim1=-2, dim2=-1).mul_(damping.unsqueeze(-1) + self._one).add_(self._one - f).add_(1e-9)
        return torch.linalg.solve(Hf, (g * f).unsqueeze(-1)).squeeze(-1).neg_()

    def _step(self, s: _State, delta: torch.Tensor) -> _State:
        R = s.R @ axis_angle_to_matrix(delta[:, :3])
        e = (s.e + delta[:, N_POSE:]).clamp_(0.0, 1.0).mul_(self._free_expression_f)
        return _State(R, s.t + delta[:, 3:6], e)

    def _solve_frames(self, s: _State, obs: _Observation, prev_e: torch.Tensor | None,
                      iterations: int) -> tuple[_State, _Evaluation]:
        """LM on each frame's pose and expression independently, identity fixed."""
        base = self._base[None]
        damping = torch.full((s.R.shape[0],), self.config.initial_damping, dtype=DTYPE)
        ev = self._evaluate(base, s, obs, prev_e)
        pose_free = torch.ones(s.R.shape[0], N_POSE, dtype=torch.bool)
        for _ in range(iterations):
            H, g, _, _, _ = self._linearise(ev, s, obs, prev_e)
            free = torch.cat([pose_free, self._free_mask(s.e, g[:, N_POSE:])], -1)
            trial = self._step(s, self._damped_solve(H, g, free, damping))
            trial_ev = self._evaluate(base, trial, obs, prev_e)
            better = trial_ev.cost < ev.cost
            if bool(better.all()):
                s, ev, damping = trial, trial_ev, damping * self._third
            elif not bool(better.any()):
                damping = damping * self._four
            else:
                s, ev = trial.select(better, s), trial_ev.select(better, ev)
                damping = torch.where(better, damping * self._third, damping * self._four)
        return s, ev

    def _solve_joint(self, s: _State, obs: _Observation) -> tuple[torch.Tensor, _State]:
        """LM on the shared identity and every frame's pose and expression together."""
        n = s.R.shape[0]
        size = N_IDENTITY + n * N_FRAME
        prior = self.config.identity_prior
        identity = torch.zeros(N_IDENTITY, dtype=DTYPE)
        damping = torch.tensor(self.config.initial_damping, dtype=DTYPE)

        def evaluate(a: torch.Tensor, state: _State) -> tuple[_Evaluation, torch.Tensor]:
            ev = self._evaluate((self._neutral + (a @ self._id_basis).view(-1, 3))[None], state, obs, None)
            return ev, ev.cost.sum() + prior * a.square().sum()

        ev, cost = evaluate(identity, s)
        for _ in range(self.config.identity_iterations):
            H_ff, g_f, jac, r, m = self._linearise(ev, s, obs, None)
            j_id = self._basis_jacobian(self._id_c, m).reshape(n, -1, N_IDENTITY)
            H = torch.zeros(size, size, dtype=DTYPE)
            H[:N_IDENTITY, :N_IDENTITY] = (j_id.mT @ j_id).sum(0) + prior * torch.eye(N_IDENTITY, dtype=DTYPE)
            cross = j_id.mT @ jac  # (B, 100, 59)
            for b in range(n):
                lo, hi = N_IDENTITY + b * N_FRAME, N_IDENTITY + (b + 1) * N_FRAME
                H[:N_IDENTITY, lo:hi] = cross[b]
                H[lo:hi, :N_IDENTITY] = cross[b].T
                H[lo:hi, lo:hi] = H_ff[b]
            g = torch.cat([(j_id.mT @ r)[..., 0].sum(0) + prior * identity, g_f.reshape(-1)])
            free_frames = torch.cat([torch.ones(n, N_POSE, dtype=torch.bool),
                                     self._free_mask(s.e, g_f[:, N_POSE:])], -1)
            free = torch.cat([torch.ones(N_IDENTITY, dtype=torch.bool), free_frames.reshape(-1)])
            delta = self._damped_solve(H, g, free, damping)
            trial_identity = identity + delta[:N_IDENTITY]
            trial = self._step(s, delta[N_IDENTITY:].view(n, N_FRAME))
            trial_ev, trial_cost = evaluate(trial_identity, trial)
            if trial_cost < cost:
                identity, s, ev, cost = trial_identity, trial, trial_ev, trial_cost
                damping = damping / 3
            else:
                damping = damping * 4
        return identity, s

    @staticmethod
    def _frame_fits(s: _State, ev: _Evaluation) -> list[FrameFit]:
        rms = ev.norm.square().mean(-1).sqrt()
        return [FrameFit(rotation=matrix_to_rotvec(s.R[b].double().numpy()).astype(np.float32),
                         translation=s.t[b].numpy().copy(), expression=s.e[b].numpy().copy(),
                         rms_error=float(rms[b])) for b in range(s.R.shape[0])]
