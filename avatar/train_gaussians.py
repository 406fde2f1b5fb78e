"""The Gaussian stage (seed section 2.2): generator -> 32-channel render -> SR -> loss, with state.

Each step takes `frames_per_step` random training frames (one by default), poses the head with
the tracked β plus that frame's learned pose refinement, renders the 32-channel image at R
through the one render path (avatar.render_pipeline), upsamples it with the SR CNN to fR (f the
SR factor, 4 in the reference), and minimises
    D(I_hr, gt) + λ_vgg VGG(I_hr, gt) + λ_lr D(I_lr, gt) + λ_mask D(alpha, mask)
(avatar.losses), I_lr being the first three channels and D the seed's L1 or, in the CPU profiles,
a scaled squared error (`photometric_loss`); the mask term is not the seed's (0 in the
reference profiles), nor is λ_prior times the f_def^exp fit's loss against the 3DMM's
blendshapes (avatar.deformation_fit) on random expressions. Adam with one group per parameter
kind at the profile's rates (times its lr_scale), decayed exponentially to `lr_final` of
themselves by the end of the schedule (the last step, or with a time budget the last minute).
Augmentation: a random zoom z in [1, augment_zoom] with a random crop, done exactly through the
camera (focal x z, principal point shifted) and an integer crop of the ground truth and mask
resized back to fR, so the render stays pixel-aligned with its target. Where the dataset's crop
reaches past the video's frame, the renders (I_hr, I_lr, alpha) are cut to that frame
(avatar.video_frame) before any loss: the padding there is not the person's to draw.

The whole training state (parameters, Adam moments, pose refinements, step, random generator)
is saved with safetensors + JSON (`save_state` / `load_state`), so a resumed run continues from
the saved step with identical parameters and the same random sequence.

Multi-GPU: under `torchrun --nproc_per_node=G -m runtime.cli train ...` (WORLD_SIZE > 1) every
rank draws different frames (its seed is offset by its rank) and gradients are averaged across
ranks with all_reduce after each backward pass before the Adam step, i.e. data-parallel SGD
exactly as DistributedDataParallel does it (done by hand because the per-frame pose parameters and
the two-module generator + SR pipeline do not fit DDP's single-module forward). Rank 0 alone
writes checkpoints, previews and logs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.nn import functional as F

from avatar.camera import Camera
from avatar.config import TrainingConfig
from avatar.deformation_fit import DeformationPriorLoss, random_expressions
from avatar.head_model import GaussianHeadModel
from avatar.losses import PHOTOMETRIC, VGGFeatures, gaussian_stage_loss
from avatar.render_pipeline import ModuleStages, RenderPipeline
from avatar.super_resolution import SuperResolution
from avatar.train_config import GaussianStageConfig
from avatar.training_data import TrainingData
from avatar.video_frame import cut_to_frame
from core.atomic import atomic_file

STATE_TENSORS = "state.safetensors"
STATE_META = "state.json"


def distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when not distributed.

    `device` is this rank's training device: NCCL for CUDA, bound to this rank's GPU (the current
    device and `device_id`, which NCCL's communicator and barriers use instead of guessing), gloo
    for the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and torch.distributed.is_available() and not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            torch.distributed.init_process_group("nccl", device_id=device)
        else:
            torch.distributed.init_process_group("gloo")
    return rank, world


@dataclass
class GaussianStage:
    model: GaussianHeadModel
    sr: SuperResolution
    pose_offsets: torch.nn.Parameter  # (N_train, 6) per-frame head-pose refinement
    optimizer: torch.optim.Adam
    generator: torch.Generator  # frame choice and augmentation
    step: int = 0
    deform_prior: DeformationPriorLoss | None = None  # with config.lambda_deform_prior

    @classmethod
    def create(cls, model: GaussianHeadModel, sr: SuperResolution, num_frames: int, training: TrainingConfig,
               lr_scale: float, seed: int = 0) -> "GaussianStage":
        device = model.positions.device
        pose_offsets = torch.nn.Parameter(torch.zeros(num_frames, 6, device=device))
        groups = model.parameter_groups(training) + [
            {"name": "sr", "params": list(sr.parameters()), "lr": training.lr_sr},
            {"name": "pose_offset", "params": [pose_offsets], "lr": training.lr_pose_offset},
        ]
        for g in groups:
            g["lr"] *= lr_scale
            g["initial_lr"] = g["lr"]  # the schedule's reference (learning_rate_factor)
        return cls(model, sr, pose_offsets, torch.optim.Adam(groups), torch.Generator().manual_seed(seed))

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]


def augmented_view(data: TrainingData, j: int, resolution: int, factor: int, zoom_max: float,
                   generator: torch.Generator, device
                   ) -> tuple[Camera, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Sample j's camera at `resolution`, its ground truth (fR, fR, 3), mask (fR, fR) and frame
    window (fR, fR, or None) at `factor` x (the SR's), randomly zoomed and cropped."""
    hr = factor * resolution
    camera = data.camera(j, resolution)
    window = data.frame_window(hr)
    parts = [data.image(j, hr), data.mask(j, hr)[..., None]] + ([] if window is None else [window[..., None]])
    gt = torch.cat(parts, -1)
    if zoom_max > 1.0:
        zoom = 1.0 + (zoom_max - 1.0) * float(torch.rand(1, generator=generator))
        side = max(factor, int(round(hr / zoom / factor)) * factor)  # crop side in hr pixels
        if side < hr:
            ox = int(torch.randint(0, (hr - side) // factor + 1, (1,), generator=generator)) * factor
            oy = int(torch.randint(0, (hr - side) // factor + 1, (1,), generator=generator)) * factor
            z = hr / side
            K = camera.K.clone()
            K[0, 0] *= z
            K[1, 1] *= z
            K[0, 2] = (K[0, 2] - ox / factor) * z
            K[1, 2] = (K[1, 2] - oy / factor) * z
            camera = Camera(K=K, viewmat=camera.viewmat, width=resolution, height=resolution)
            crop = gt[oy:oy + side, ox:ox + side].permute(2, 0, 1)[None]
            gt = F.interpolate(crop, size=(hr, hr), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    gt = gt.to(device)
    return camera.to(device), gt[..., :3], gt[..., 3], None if window is None else gt[..., 4]


def render_frame(model: GaussianHeadModel, sr: SuperResolution, expression: torch.Tensor, pose: torch.Tensor,
                 camera, backend: str, skip_unblended: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(I_hr (1, 3, fR, fR), the 32-channel render (1, C, R, R), its alpha (1, 1, R, R)) of one frame."""
    out = RenderPipeline(ModuleStages(model, sr, skip_unblended), backend).render(expression, pose, camera)
    return out.rgb.permute(2, 0, 1)[None], out.features.permute(2, 0, 1)[None], out.alpha.permute(2, 0, 1)[None]


def render_sample(model: GaussianHeadModel, sr: SuperResolution, data: TrainingData, j: int, resolution: int,
                  backend: str) -> torch.Tensor:
    """(fR, fR, 3) render of sample j with its tracked expression and pose, cut to the video's frame
    (avatar.video_frame), on the model's device."""
    device = model.positions.device
    hr, _, _ = render_frame(model, sr, data.expression[j].to(device), data.pose[j].to(device),
                            data.camera(j, resolution).to(device), backend)
    return data.framed(hr[0].permute(1, 2, 0), 1.0)


def schedule_progress(step: int, seconds: float, config: GaussianStageConfig) -> float:
    """How far the schedule is, from 0 to 1: the steps' share, or with a time budget the larger of
    that and the time's share."""
    progress = step / max(1, config.steps)
    if config.minutes > 0:
        progress = max(progress, seconds / (60.0 * config.minutes))
    return min(progress, 1.0)


def learning_rate_factor(progress: float, config: GaussianStageConfig) -> float:
    """Exponential decay from 1 at the start to `lr_final` at the end of the schedule."""
    return config.lr_final ** min(max(progress, 0.0), 1.0)


def train_step(stage: GaussianStage, data: TrainingData, resolution: int, config: GaussianStageConfig,
               backend: str, vgg: VGGFeatures | None, world: int = 1, progress: float | None = None
               ) -> dict[str, float]:
    """One Adam step on the mean loss of `config.frames_per_step` random frames, at the rates of
    `progress` (schedule_progress; by default the steps' share)."""
    device = stage.model.positions.device
    stage.optimizer.zero_grad(set_to_none=True)
    frames = config.frames_per_step
    sums: dict[str, float] = {}
    for _ in range(frames):
        j = int(torch.randint(len(data), (1,), generator=stage.generator))
        camera, gt, mask, window = augmented_view(data, j, resolution, stage.sr.factor, config.augment_zoom,
                                                  stage.generator, device)
        expression = data.expression[j].to(device)
        pose = data.pose[j].to(device) + stage.pose_offsets[j]
        hr, features, alpha = render_frame(stage.model, stage.sr, expression, pose, camera, backend,
                                           skip_unblended=True)
        window_lr = None if window is None else F.avg_pool2d(window[None, None], stage.sr.factor)
        gt_hr = gt.permute(2, 0, 1)[None]
        gt_lr = F.avg_pool2d(gt_hr, stage.sr.factor)
        total, terms = gaussian_stage_loss(cut_to_frame(hr, window, 1.0), cut_to_frame(features[:, :3], window_lr, 1.0),
                                           gt_hr, gt_lr, config.lambda_vgg, config.lambda_lr, vgg,
                                           config.photometric_loss)
        if config.lambda_mask > 0:
            mask_loss = PHOTOMETRIC[config.photometric_loss](cut_to_frame(alpha, window_lr, 0.0),
                                                             F.avg_pool2d(mask[None, None], stage.sr.factor))
            terms["mask"] = float(mask_loss.detach())
            total = total + config.lambda_mask * mask_loss
        (total / frames).backward()
        for k, v in {"total": float(total.detach()), **terms}.items():
            sums[k] = sums.get(k, 0.0) + v / frames
    if stage.deform_prior is not None and config.lambda_deform_prior > 0:
        groups = 16
        prior, _ = stage.deform_prior(stage.model, random_expressions(groups, stage.generator),
                                      config.deform_prior_batch // groups, stage.generator)
        (config.lambda_deform_prior * prior).backward()
        sums["prior"] = float(prior.detach())
    if world > 1:
        for p in stage.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad)
            p.grad /= world
    factor = learning_rate_factor(schedule_progress(stage.step, 0.0, config) if progress is None else progress,
                                  config)
    for group in stage.optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor
    stage.optimizer.step()
    stage.step += 1
    return sums


def save_state(stage: GaussianStage, directory: Path, extra: dict | None = None) -> None:
    """Write the full training state atomically, the tensors before the metadata that names their step."""
    opt = stage.optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in stage.model.state_dict().items()}
    tensors.update({f"sr.{k}": v for k, v in stage.sr.state_dict().items()})
    tensors["pose_offsets"] = stage.pose_offsets.detach()
    for pid, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"opt.{pid}.{key}"] = torch.as_tensor(value)
    tensors["rng"] = stage.generator.get_state()
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"step": stage.step, "param_groups": opt["param_groups"], "extra": extra or {}}
    # Nested so that the tensors are renamed into place first, the metadata last.
    with atomic_file(directory / STATE_META) as tmp_m, atomic_file(directory / STATE_TENSORS) as tmp_t:
        save_file(tensors, str(tmp_t))
        tmp_m.write_text(json.dumps(meta, indent=1))


def has_state(directory: Path) -> bool:
    return (directory / STATE_TENSORS).is_file() and (directory / STATE_META).is_file()


def load_state(stage: GaussianStage, directory: Path) -> dict:
    """Restore a state saved by `save_state` into a stage built the same way; returns its `extra`."""
    try:
        meta = json.loads((directory / STATE_META).read_text())
        with safe_open(str(directory / STATE_TENSORS), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # damaged files raise several types
        raise ValueError(f"{directory}: unreadable training state ({' '.join(str(e).split())}); "
                         "use --restart to start over") from None
    device = stage.model.positions.device
    try:
        stage.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        stage.sr.load_state_dict({k[3:]: v for k, v in tensors.items() if k.startswith("sr.")})
        with torch.no_grad():
            stage.pose_offsets.copy_(tensors["pose_offsets"])
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, pid, key = k.split(".", 2)
                state.setdefault(int(pid), {})[key] = v.to(device) if key != "step" else v
        stage.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        for group in stage.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])  # states saved before the schedule existed
    except (KeyError, RuntimeError, ValueError) as e:
        raise ValueError(f"{directory}: training state does not match this profile/dataset "
                         f"({' '.join(str(e).split())[:200]}); use --restart to start over") from None
    stage.generator.set_state(tensors["rng"])
    stage.step = int(meta["step"])
    return meta.get("extra", {})
