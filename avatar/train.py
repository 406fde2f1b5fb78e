"""Training an avatar from a prepared dataset: mesh stage (seed 2.1), then Gaussian stage (seed 2.2).

    train_avatar(TrainOptions(dataset=DS, out=AV, profile="tiny"))

Files. The avatar goes to AV (avatar.safetensors + avatar.json, avatar.checkpoint): written at
every checkpoint, so an interrupted run still leaves a usable avatar. Everything needed to resume
lives beside it in `AV.train/` (the avatar directory is replaced atomically on each save, so it
cannot hold other files):
    mesh_stage.safetensors + mesh_stage.json   the trained guidance model (skipped on resume)
    state.safetensors + state.json             the Gaussian stage (avatar.train_gaussians)
    loss_log.csv                               step, seconds, total and each loss term
    previews/step_NNNNNN.png                   [render | ground truth] of a training and a held-out frame
    tensorboard/                               when the `tensorboard` package is installed
A run with an existing `AV.train/` of the same profile resumes from its last checkpoint;
`restart=True` starts over. Ctrl+C saves a checkpoint, then stops.
"""
from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from avatar.backend_device import backend_device
from avatar.camera import Camera
from avatar.checkpoint import Avatar, AvatarMetadata, save_avatar
from avatar.dataset import Dataset, load_dataset
from avatar.deformation_fit import DeformationPriorLoss, fit_expression_deformation, random_expressions
from avatar.evaluation import evaluate_renders
from avatar.face_model_prior import FaceModelTarget, eyelid_points, face_model_target, sample_colors
from avatar.gaussian_init import fit_colors, gaussians_from_mesh_head
from avatar.head_model import GaussianHeadModel
from avatar.losses import load_vgg16_features
from avatar.mesh_stage import MeshHead, fit_initial_sdf, head_prior, mesh_head_camera, train_mesh_stage
from avatar.profiles import Profile, get_profile
from avatar.super_resolution import SuperResolution
from avatar.train_gaussians import (GaussianStage, distributed, has_state, load_state, render_sample, save_state,
                                    schedule_progress, train_step)
from avatar.training_data import TrainingData, load_training_data, subsample
from core.atomic import atomic_file
from tracking.face_model import load_face_model_data

Progress = Callable[[Iterator, str, int], Iterator]
logger = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    dataset: str | Path
    out: str | Path
    profile: str | Profile = "tiny"
    backend: str = "cpu"  # rasterizer: cpu or gsplat (CUDA)
    gaussian_steps: int | None = None  # override the profile's; alone, it also turns off a time budget
    gaussian_minutes: float | None = None  # override the profile's time budget (0 = none)
    mesh_steps: int | None = None
    restart: bool = False
    seed: int = 0
    progress: Progress | None = None
    stop_after: int | None = None  # stop (with a checkpoint) once this Gaussian step is reached


@dataclass
class TrainSummary:
    step: int
    finished: bool
    mesh_seconds: float
    gaussian_seconds: float
    mesh_heldout_psnr: float | None
    vgg: bool
    last_losses: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(vars(self))


def state_dir(out: Path) -> Path:
    return out.with_name(out.name + ".train")


def _resolve(profile: str | Profile, options: TrainOptions) -> Profile:
    p = get_profile(profile) if isinstance(profile, str) else profile
    if options.gaussian_steps is not None:
        # Asking for N steps means N steps, unless a budget is asked for too.
        p = replace(p, gaussian=replace(p.gaussian, steps=options.gaussian_steps, minutes=0.0))
    if options.gaussian_minutes is not None:
        p = replace(p, gaussian=replace(p.gaussian, minutes=options.gaussian_minutes))
    if options.mesh_steps is not None:
        p = replace(p, mesh=replace(p.mesh, steps=options.mesh_steps))
    return p


def _device(backend: str) -> torch.device:
    """The backend's device; under torchrun, the GPU of this rank (LOCAL_RANK)."""
    device = backend_device(backend)
    if device.type == "cuda":
        import os
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _save_mesh_head(mesh_head: MeshHead, directory: Path, info: dict) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in mesh_head.state_dict().items()}
    # Nested so that the tensors are renamed into place first, the metadata last.
    with (atomic_file(directory / "mesh_stage.json") as tmp_m,
          atomic_file(directory / "mesh_stage.safetensors") as tmp_t):
        save_file(tensors, str(tmp_t))
        tmp_m.write_text(json.dumps({"box": mesh_head.box, **info}, indent=1))


def _load_mesh_head(profile: Profile, directory: Path) -> tuple[MeshHead, dict] | None:
    if not ((directory / "mesh_stage.safetensors").is_file() and (directory / "mesh_stage.json").is_file()):
        return None
    info = json.loads((directory / "mesh_stage.json").read_text())
    mesh_head = MeshHead(profile.model, profile.mesh, *info["box"])
    mesh_head.load_state_dict(load_file(str(directory / "mesh_stage.safetensors")))
    return mesh_head, info


def mesh_stage_psnr(mesh_head: MeshHead, heldout: TrainingData, resolution: int, backend: str,
                    device: torch.device) -> float:
    """Held-out PSNR of the mesh stage's own render, at the avatar's output resolution, cut to the
    video's frame like every render that is scored (avatar.video_frame)."""
    with torch.no_grad():
        mesh, features = mesh_head.neutral_mesh()

        def render(j: int) -> torch.Tensor:
            cam = mesh_head_camera(heldout, j, resolution, device)
            out, _ = mesh_head.render(mesh, features, heldout.expression[j].to(device), heldout.pose[j].to(device),
                                      cam, backend)
            return heldout.framed(out.image[..., :3], 1.0)

        return evaluate_renders(render, heldout, resolution).psnr


class _LossLog:
    """CSV loss log (appending on resume) plus TensorBoard when installed."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "loss_log.csv"
        self.fields: list[str] | None = None
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(directory / "tensorboard"))
        except ImportError:  # tensorboard is optional
            pass

    def write(self, row: dict) -> None:
        if self.fields is None:
            self.fields = list(row)
            if not self.path.is_file():
                with open(self.path, "w", newline="") as f:
                    csv.writer(f).writerow(self.fields)
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])
        if self.writer is not None:
            for k, v in row.items():
                if k != "step":
                    self.writer.add_scalar(f"loss/{k}", v, row["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _preview(path: Path, stage: GaussianStage, samples: list[tuple[TrainingData, int]], resolution: int,
             backend: str) -> None:
    import cv2

    rows = []
    with torch.no_grad():
        for data, j in samples:
            pred = render_sample(stage.model, stage.sr, data, j, resolution, backend).clamp(0, 1).cpu().numpy()
            gt = data.image(j, stage.sr.factor * resolution).numpy()
            rows.append(np.concatenate([pred, gt], 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    img = (np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def build_avatar(stage: GaussianStage, dataset: Dataset, data: TrainingData, resolution: int,
                 training: dict) -> Avatar:
    """The avatar as a checkpoint: the model, SR, the dataset's first camera at the render size
    and the video's frame in that camera (avatar.video_frame)."""
    native = Camera(K=torch.as_tensor(dataset.frames.K[0]), viewmat=torch.as_tensor(dataset.frames.viewmat[0]),
                    width=dataset.size, height=dataset.size)
    camera = native.scaled(resolution / dataset.size)
    checksum = dataset.meta.get("face_model_checksum")
    # The identity lets another recording of the person be aligned to this avatar (evaluate).
    training = {**training, "identity": [float(v) for v in dataset.frames.identity]}
    return Avatar(stage.model, stage.sr, camera, data.pose[:, 3:].mean(0),
                  AvatarMetadata(face_model_checksum=checksum, training=training,
                                 frame=dataset.frame_rectangle(resolution)))


def initialise_from_data(model: GaussianHeadModel, dataset: Dataset, train: TrainingData, profile: Profile,
                         seed: int, wrap: Progress, target: FaceModelTarget | None) -> None:
    """The profile's optional starts (avatar.face_model_prior): f_def^exp from the tracked 3DMM's
    blendshapes, then each Gaussian's colour from the training frames it is seen in."""
    cfg = profile.gaussian
    generator = torch.Generator().manual_seed(seed)
    if profile.training.lr_pose_mlp == 0:
        for mlp in model.pose_shape_mlps():
            mlp.zero_output()
    if cfg.deform_prior_steps > 0:
        def expressions(count: int, gen: torch.Generator) -> torch.Tensor:
            # Half the tracked expressions (what training will see), half random ones (what other
            # drivers may do).
            tracked = train.expression[torch.randint(len(train), (count // 2,), generator=gen)]
            return torch.cat([tracked, random_expressions(count - count // 2, gen)])

        ticks = iter(wrap(range(cfg.deform_prior_steps), "fit blendshapes", cfg.deform_prior_steps))
        error = fit_expression_deformation(model, target, cfg.deform_prior_steps, cfg.deform_prior_batch,
                                           cfg.deform_prior_lr, generator, lambda n: next(ticks, None), expressions)
        logger.info("f_def^exp fitted to the face model's blendshapes: mean error %.4f units", error)
    if cfg.color_init_frames > 0:
        frames = subsample(np.arange(len(train)), cfg.color_init_frames).tolist()
        size = profile.render_resolution * profile.model.sr_factor
        with torch.no_grad():
            posed = [model(train.expression[j], train.pose[j]) for j in frames]
            colors, seen = sample_colors(posed, train, frames, min(size, train.image_size))
        error = fit_colors(model, colors, (seen > 0).float(), train.expression[frames], train.pose[frames],
                           cfg.color_init_steps, generator)
        logger.info("colours read from %d frames (%.0f %% of the Gaussians seen): mean error %.3f", len(frames),
                    100 * float((seen > 0).float().mean()), error)


def train_avatar(options: TrainOptions) -> TrainSummary:
    profile = _resolve(options.profile, options)
    device = _device(options.backend)
    rank, world = distributed(device)
    main = rank == 0
    wrap: Progress = options.progress if (options.progress and main) else (lambda it, label, total: it)
    out = Path(options.out)
    work = state_dir(out)
    dataset = load_dataset(options.dataset)
    resolution = profile.render_resolution
    hr = profile.model.sr_factor * resolution
    cache = profile.image_cache_size or min(hr, dataset.size)
    run = {"profile": profile.name, "dataset": str(Path(dataset.root).resolve())}
    if not options.restart and (work / "run.json").is_file():
        previous = json.loads((work / "run.json").read_text())
        if previous != run:
            raise ValueError(f"{work} holds a run of profile {previous.get('profile')!r} on "
                             f"{previous.get('dataset')}; train with the same profile and dataset to resume it, "
                             "or pass --restart")
    # Loaded once the run is known to be resumable (a mismatch is reported without the slow load),
    # before anything is removed or written (a bad image leaves the previous run as it was).
    train = load_training_data(dataset, subsample(dataset.train_indices, profile.max_train_frames), cache, wrap)
    heldout = load_training_data(dataset, dataset.heldout_indices, cache, wrap) if len(dataset.heldout_indices) \
        else None
    if options.restart and main and work.exists():
        shutil.rmtree(work)
    if world > 1:
        torch.distributed.barrier()  # every rank has read run.json before rank 0 removes or rewrites it
    if main:
        work.mkdir(parents=True, exist_ok=True)
        (work / "run.json").write_text(json.dumps(run))
    torch.manual_seed(options.seed)

    # Mesh stage (seed 2.1), skipped when a finished one is saved.
    loaded = None if options.restart else _load_mesh_head(profile, work)
    if loaded is not None:
        mesh_head, mesh_info = loaded
        mesh_head.to(device)
    else:
        start = time.perf_counter()
        prior = head_prior(dataset.frames.identity)
        mesh_head = MeshHead.around(prior, profile.model, profile.mesh).to(device)
        fit_initial_sdf(mesh_head, prior, profile.mesh.init_steps, train, seed=options.seed, progress=wrap)
        mesh_log = train_mesh_stage(mesh_head, train, profile.mesh, options.backend, options.seed,
                                    progress=wrap)
        mesh_info = {"seconds": time.perf_counter() - start, "last": mesh_log.rows[-1] if mesh_log.rows else {},
                     "heldout_psnr": mesh_stage_psnr(mesh_head, heldout, hr, options.backend, device)
                     if heldout is not None else None}
        if main:
            _save_mesh_head(mesh_head, work, mesh_info)

    # Gaussian stage (seed 2.2).
    torch.manual_seed(options.seed)
    resumed = not options.restart and has_state(work)
    cfg = profile.gaussian
    wants_target = cfg.deform_prior_steps > 0 or cfg.lambda_deform_prior > 0
    face_data = load_face_model_data() if wants_target or cfg.eyelid_points > 0 else None
    eyelids = eyelid_points(dataset.frames.identity, cfg.eyelid_points, torch.Generator().manual_seed(options.seed),
                            face_data) if cfg.eyelid_points > 0 else None
    model = gaussians_from_mesh_head(mesh_head.cpu(), profile.model, seed=options.seed, extra_points=eyelids)
    if model.rest_rotation is not None:
        with torch.no_grad():
            model.rest_rotation.copy_(train.pose[:, :3].mean(0))  # small turns: their mean is a turn
    # Built from the Gaussians' starting positions, the same whether the run starts or resumes.
    target = face_model_target(model.positions, dataset.frames.identity, face_data) if wants_target else None
    if not resumed:
        initialise_from_data(model, dataset, train, profile, options.seed, wrap, target)
    model = model.to(device)
    sr = SuperResolution.from_config(profile.model)
    if not sr.residual:
        with torch.no_grad():
            # Start the SR output at the mean training colour (mostly the white background) instead
            # of sigmoid(0) = 0.5 grey: the first steps then refine the head instead of the backdrop.
            mean = (train.images.float().mean((0, 1, 2)) / 255).clamp(0.05, 0.95)
            sr.head.bias.copy_(torch.log(mean / (1 - mean)))
    sr = sr.to(device)
    stage = GaussianStage.create(model, sr, len(train), profile.training, profile.gaussian.lr_scale,
                                 seed=options.seed + rank)
    if cfg.lambda_deform_prior > 0:
        stage.deform_prior = DeformationPriorLoss(target)
    extra = load_state(stage, work) if resumed else {}
    if world > 1:
        # Every rank starts from rank 0's parameters and P0 (mesh stages on different ranks may
        # differ in the last bits); averaged gradients then keep them identical.
        with torch.no_grad():
            for p in stage.parameters() + [stage.model.landmarks]:
                torch.distributed.broadcast(p, 0)
        if resumed:
            # The saved generator is rank 0's: give each rank its own frames again.
            stage.generator.manual_seed(options.seed + rank + world * stage.step)
    vgg = load_vgg16_features() if profile.gaussian.lambda_vgg > 0 else None
    if vgg is not None:
        vgg.to(device)
    gaussian_seconds = float(extra.get("gaussian_seconds", 0.0))
    log = _LossLog(work) if main else None
    previews = [(train, 0)] + ([(heldout, len(heldout) - 1)] if heldout is not None else [])
    target = cfg.steps if options.stop_after is None else min(cfg.steps, options.stop_after)
    last: dict = {}

    def summary(finished: bool) -> TrainSummary:
        return TrainSummary(stage.step, finished, float(mesh_info.get("seconds", 0.0)), gaussian_seconds,
                            mesh_info.get("heldout_psnr"), vgg is not None, last)

    def checkpoint(finished: bool) -> None:
        if not main:
            return
        s = summary(finished)
        save_state(stage, work, {"gaussian_seconds": gaussian_seconds})
        save_avatar(build_avatar(stage, dataset, train, resolution, {"profile": profile.name, **s.to_dict()}), out)

    if cfg.minutes > 0:
        # The budget, not the step count, ends such a run: the bar counts steps without a total.
        steps = wrap(iter(range(stage.step, target)), f"gaussian stage ({cfg.minutes:g} min)", None)
    else:
        steps = wrap(range(stage.step, target), "gaussian stage", target - stage.step)
    try:
        begin = time.perf_counter()
        for _ in steps:
            seconds = gaussian_seconds + time.perf_counter() - begin
            if world > 1 and cfg.minutes > 0:
                # Every rank must stop at the same step (they meet in all_reduce): the slowest clock rules.
                clock = torch.tensor([seconds], device=device)
                torch.distributed.all_reduce(clock, op=torch.distributed.ReduceOp.MAX)
                seconds = float(clock)
            progress = schedule_progress(stage.step, seconds, cfg)
            if progress >= 1.0:
                break
            last = train_step(stage, train, resolution, cfg, options.backend, vgg, world, progress)
            if main and (stage.step % cfg.log_every == 0 or stage.step == target):
                log.write({"step": stage.step, "seconds": round(gaussian_seconds + time.perf_counter() - begin, 3),
                           **last})
            if main and stage.step % cfg.preview_every == 0:
                _preview(work / "previews" / f"step_{stage.step:06d}.png", stage, previews, resolution,
                         options.backend)
            if stage.step % cfg.checkpoint_every == 0 and stage.step != target:
                gaussian_seconds += time.perf_counter() - begin
                begin = time.perf_counter()
                checkpoint(False)
        gaussian_seconds += time.perf_counter() - begin
    except KeyboardInterrupt:
        gaussian_seconds += time.perf_counter() - begin
        checkpoint(False)
        if log is not None:
            log.close()
        raise
    finished = schedule_progress(stage.step, gaussian_seconds, cfg) >= 1.0
    checkpoint(finished)
    if log is not None:
        log.close()
    if world > 1:
        torch.distributed.barrier()  # rank 0's last checkpoint is written
        torch.distributed.destroy_process_group()
    return summary(finished)
