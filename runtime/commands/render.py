"""`splatcam render`: a tracked coefficient sequence through a trained avatar to an MP4.

    splatcam render --avatar AV --params P.npz --out OUT.mp4 [--backend cpu|gsplat] [--fps F]

P.npz is the output of `splatcam track` (tracking/params_file.py): expression (T, 53), rotation
(T, 3), translation (T, 3), valid (T,), fps; its `identity` is not needed (the avatar's person is
fixed). Each frame runs generator -> rasterizer -> SR CNN.

Camera and pose. The avatar keeps the camera it was trained for (checkpoint `camera`); each
frame's head pose β = (rotation, translation) places the head in front of it, exactly as
during training. Rotation is used as tracked. Translation is anchored: the sequence's mean
tracked translation is moved onto the avatar's `anchor_translation` (the mean head position of
its training frames), so the head moves as the tracked head moved but stays framed the way the
avatar was trained, whatever camera and distance the driving video had (and the pose MLPs see
translations like those they were trained on). For the avatar's own training sequence the
anchoring is (nearly) the identity. `--absolute-translation` uses the tracked translation as is.
Frames the tracker marked invalid repeat the nearest earlier valid frame (the first valid one
before any valid frame has been seen).
"""
from __future__ import annotations

import argparse
from typing import Iterator

import numpy as np

from tracking.params_file import ParamsSequence, read_params


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("render", help="render a tracked coefficient sequence through an avatar to MP4",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--avatar", required=True, help="avatar directory (avatar.json + avatar.safetensors)")
    p.add_argument("--params", required=True, help="coefficient sequence .npz written by `splatcam track`")
    p.add_argument("--out", required=True, help="output video, .mp4")
    p.add_argument("--backend", choices=["cpu", "gsplat"], default="cpu",
                   help="rasterizer: cpu (any machine) or gsplat (CUDA)")
    p.add_argument("--fps", type=float, default=None,
                   help="output frame rate (default: the params file's fps)")
    p.add_argument("--absolute-translation", action="store_true",
                   help="use tracked translations as is instead of anchoring them on the avatar's framing")
    p.set_defaults(func=run)


def held_frame_index(valid: np.ndarray) -> np.ndarray:
    """For each frame, the index of the frame to show: itself if valid, else the nearest earlier
    valid one (the first valid one before any valid frame)."""
    index = np.maximum.accumulate(np.where(valid, np.arange(len(valid)), -1))
    index[index < 0] = int(np.argmax(valid))
    return index


def frame_poses(seq: ParamsSequence, anchor_translation: np.ndarray, absolute: bool) -> np.ndarray:
    """(T, 6) head poses β = (rotation, translation) for the avatar's camera (see the module doc)."""
    translation = seq.translation
    if not absolute:
        translation = translation - translation[seq.valid].mean(0) + anchor_translation
    return np.concatenate([seq.rotation, translation], 1).astype(np.float32)


def render_frames(avatar, expressions: np.ndarray, poses: np.ndarray, backend: str,
                  device) -> Iterator[np.ndarray]:
    """RGB uint8 frames (4H, 4W, 3) of the avatar, one per row of (T, 53) expressions and (T, 6)
    poses: generator -> rasterizer -> SR, on `device` with a progress bar."""
    import torch
    from tqdm import tqdm

    from avatar.raster import render_gaussians

    avatar.to(device)
    avatar.model.eval()
    avatar.sr.eval()
    background = torch.ones(avatar.config.color_channels, device=device)
    expression = torch.from_numpy(expressions).to(device)
    pose = torch.from_numpy(poses).to(device)
    with torch.no_grad():
        for t in tqdm(range(len(poses)), desc="render", unit="frame"):
            gaussians = avatar.model(expression[t], pose[t])
            rendered = render_gaussians(gaussians, avatar.camera, background=background, backend=backend)
            rgb = avatar.sr(rendered.image.permute(2, 0, 1)[None])[0].permute(1, 2, 0)
            yield (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def run(args: argparse.Namespace) -> int:
    from avatar.backend_device import backend_device
    from avatar.checkpoint import load_avatar
    from avatar.super_resolution import SR_FACTOR
    from runtime.video_writer import VideoWriter

    if not str(args.out).lower().endswith(".mp4"):
        raise ValueError(f"{args.out}: output video must end in .mp4")
    if args.fps is not None and not (np.isfinite(args.fps) and args.fps > 0):
        raise ValueError(f"--fps must be a positive number, got {args.fps}")
    seq = read_params(args.params)
    if not seq.valid.any():
        raise ValueError(f"{args.params}: no frame has a tracked face (valid is all false)")
    avatar = load_avatar(args.avatar)
    device = backend_device(args.backend)

    index = held_frame_index(seq.valid)
    poses = frame_poses(seq, avatar.anchor_translation.numpy(), args.absolute_translation)[index]
    expressions = seq.expression[index]
    fps = args.fps or seq.fps

    height, width = SR_FACTOR * avatar.camera.height, SR_FACTOR * avatar.camera.width
    with VideoWriter(args.out, fps, width, height) as writer:
        for frame in render_frames(avatar, expressions, poses, args.backend, device):
            writer.write(frame)
    print(f"wrote {writer.frames_written} frames ({width}x{height}, {fps:g} fps) to {args.out}")
    return 0
