"""`splatcam evaluate`: held-out PSNR / SSIM of a trained avatar, the mean-image baseline, a video.

    splatcam evaluate --avatar AV --dataset DS [--json E.json] [--video SIDE.mp4] [--poster F.png]
                      [--raster cpu|gsplat]

DS may be another recording of the avatar's person (avatar/recording_alignment.py: its poses
are aligned to the avatar's canonical space through the two fitted identities).
Renders every held-out frame of DS (tracked pose and expression) at the avatar's output size and
compares it with the ground truth: PSNR and SSIM (avatar/metrics.py), next to the PSNR of the
mean training image (a do-nothing baseline) and, when the avatar was trained here, the mesh
stage's own held-out PSNR. LPIPS is not reported: its network weights cannot be obtained here.
--json writes {"psnr", "ssim", "baseline_mean_image_psnr", "baseline_mean_image_ssim",
"mesh_stage_psnr", "frames", "resolution"}; --video writes [render | ground truth] per frame.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from runtime.options import add_raster_argument, raster_choice


POSTER_FRAMES = 6


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="held-out PSNR/SSIM of an avatar on its dataset",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--avatar", required=True, help="avatar directory")
    p.add_argument("--dataset", required=True, help="dataset folder from `splatcam prepare`")
    p.add_argument("--json", default=None, help="write the metrics to this JSON file")
    p.add_argument("--video", default=None, help="write a side-by-side video (.mp4) of the held-out frames")
    p.add_argument("--poster", default=None, metavar="FILE.png",
                   help="write six evenly spaced held-out frames, render above ground truth, as one PNG")
    add_raster_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from avatar.backend_device import backend_device
    from avatar.checkpoint import load_avatar
    from avatar.dataset import load_dataset
    from avatar.evaluation import evaluate_renders, mean_image, mean_image_baseline
    from avatar.recording_alignment import aligned_poses, recording_alignment
    from avatar.train_gaussians import render_sample
    from avatar.training_data import load_training_data
    from runtime.video_writer import VideoWriter

    if args.video is not None and not str(args.video).lower().endswith(".mp4"):
        raise ValueError(f"{args.video}: the video must end in .mp4")
    if args.poster is not None and not str(args.poster).lower().endswith(".png"):
        raise ValueError(f"{args.poster}: the poster must end in .png")
    dataset = load_dataset(args.dataset)
    if len(dataset.heldout_indices) == 0:
        raise ValueError(f"{args.dataset}: no held-out frames (prepare with --holdout > 0)")
    avatar = load_avatar(args.avatar)
    raster = raster_choice(args)
    device = backend_device(raster)
    avatar.to(device)
    avatar.model.eval()
    avatar.sr.eval()
    render_size = avatar.camera.width
    out_size = avatar.sr.factor * render_size
    cache = min(out_size, dataset.size)

    def progress(iterable, label, total):
        return tqdm(iterable, desc=label, total=total, unit="frame")

    heldout = load_training_data(dataset, dataset.heldout_indices, cache)
    identity = avatar.metadata.training.get("identity")
    if isinstance(identity, list) and len(identity) == len(dataset.frames.identity) \
            and not np.allclose(identity, dataset.frames.identity, atol=1e-4):
        # Another recording of the avatar's person: its poses are moved into the avatar's space.
        alignment = recording_alignment(np.asarray(identity, np.float32), dataset.frames.identity)
        heldout.pose = aligned_poses(heldout.pose, alignment)
        print(f"{args.dataset} is another recording: its poses are aligned to the avatar "
              f"(rotation {np.degrees(np.arccos(np.clip((np.trace(alignment[0]) - 1) / 2, -1, 1))):.2f} deg, "
              f"shift {np.linalg.norm(alignment[1]):.4f} units)")

    def render(j: int):
        return render_sample(avatar.model, avatar.sr, heldout, j, render_size, raster)

    writer = VideoWriter(args.video, dataset.fps, 2 * out_size, out_size) if args.video else None
    shown = set(np.linspace(0, len(heldout) - 1, min(POSTER_FRAMES, len(heldout))).round().astype(int).tolist())
    tiles = []
    try:
        def on_frame(j, pred, gt):
            if writer is not None:
                writer.write((np.concatenate([pred, gt], 1) * 255 + 0.5).astype(np.uint8))
            if args.poster is not None and j in shown:
                tiles.append((np.concatenate([pred, gt], 0) * 255 + 0.5).astype(np.uint8))

        result = evaluate_renders(render, heldout, out_size, on_frame, progress)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    if args.poster is not None:
        import cv2

        Path(args.poster).parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.poster), cv2.cvtColor(np.concatenate(tiles, 1), cv2.COLOR_RGB2BGR)):
            raise ValueError(f"{args.poster}: could not write the poster")
    train_images = (torch.from_numpy(dataset.load_image(int(i), cache))
                    for i in progress(dataset.train_indices, "mean image", len(dataset.train_indices)))
    baseline = mean_image_baseline(mean_image(train_images, out_size), heldout, out_size)
    mesh_psnr = avatar.metadata.training.get("mesh_heldout_psnr")
    report = {"psnr": result.psnr, "ssim": result.ssim, "baseline_mean_image_psnr": baseline.psnr,
              "baseline_mean_image_ssim": baseline.ssim,
              "mesh_stage_psnr": mesh_psnr if isinstance(mesh_psnr, (int, float)) and math.isfinite(mesh_psnr) else None,
              "frames": result.frames, "resolution": out_size}
    mesh = f", mesh stage {report['mesh_stage_psnr']:.2f} dB" if report["mesh_stage_psnr"] is not None else ""
    print(f"held-out ({result.frames} frames, {out_size}px): PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f}; "
          f"mean-image baseline PSNR {baseline.psnr:.2f} dB{mesh}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0
