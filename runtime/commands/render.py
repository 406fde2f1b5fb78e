"""`splatcam render`: a tracked coefficient sequence through a trained avatar to an MP4.

    splatcam render --avatar AV --params P.npz --out OUT.mp4 [--raster cpu|gsplat] [--fps F]

P.npz is the output of `splatcam track` (tracking/params_file.py): expression (T, 53), rotation
(T, 3), translation (T, 3), valid (T,), fps; its `identity` is not needed (the avatar's person is
fixed). Each frame runs generator -> rasterizer -> SR CNN (avatar/render_pipeline.py).

Camera and pose. The avatar keeps the camera it was trained for (checkpoint `camera`); each
frame's head pose β = (rotation, translation) places the head in front of it, exactly as
during training. Rotation is used as tracked; translation is anchored on the avatar's framing
and invalid frames hold the last valid one (runtime/offline.py). `--absolute-translation` uses
the tracked translation as is.
"""
from __future__ import annotations

import argparse

import numpy as np

from runtime.options import add_raster_argument, raster_choice


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("render", help="render a tracked coefficient sequence through an avatar to MP4",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--avatar", required=True, help="avatar directory (avatar.json + avatar.safetensors)")
    p.add_argument("--params", required=True, help="coefficient sequence .npz written by `splatcam track`")
    p.add_argument("--out", required=True, help="output video, .mp4")
    add_raster_argument(p)
    p.add_argument("--fps", type=float, default=None,
                   help="output frame rate (default: the params file's fps)")
    p.add_argument("--absolute-translation", action="store_true",
                   help="use tracked translations as is instead of anchoring them on the avatar's framing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from avatar.backend_device import backend_device
    from avatar.checkpoint import load_avatar
    from runtime.offline import frame_poses, held_frame_index, render_frames
    from runtime.video_writer import VideoWriter
    from tracking.params_file import read_params

    if not str(args.out).lower().endswith(".mp4"):
        raise ValueError(f"{args.out}: output video must end in .mp4")
    if args.fps is not None and not (np.isfinite(args.fps) and args.fps > 0):
        raise ValueError(f"--fps must be a positive number, got {args.fps}")
    raster = raster_choice(args)
    seq = read_params(args.params)
    if not seq.valid.any():
        raise ValueError(f"{args.params}: no frame has a tracked face (valid is all false)")
    avatar = load_avatar(args.avatar)
    device = backend_device(raster, "--raster")

    index = held_frame_index(seq.valid)
    poses = frame_poses(seq, avatar.anchor_translation.numpy(), args.absolute_translation)[index]
    expressions = seq.expression[index]
    fps = args.fps or seq.fps

    height, width = avatar.sr.factor * avatar.camera.height, avatar.sr.factor * avatar.camera.width
    with VideoWriter(args.out, fps, width, height) as writer:
        frames = render_frames(avatar, expressions, poses, raster, device)
        for frame in tqdm(frames, total=len(poses), desc="render", unit="frame"):
            writer.write(frame)
    print(f"wrote {writer.frames_written} frames ({width}x{height}, {fps:g} fps) to {args.out}")
    return 0
