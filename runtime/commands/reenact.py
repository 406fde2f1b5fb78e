"""`splatcam reenact`: drive an avatar offline with a face video (cross-identity).

    splatcam reenact [--avatar DIR|demo] --driver VIDEO --out OUT.mp4 [--side-by-side]
                     [--raster cpu|gsplat] [--start N] [--frames N] [--neutral calmest|first-second]

1. The driver video (or the clip --start/--frames of it) is tracked (tracking.tracker.track_video:
   identity once, then expression and head pose per frame, smoothed).
2. Relative retargeting (tracking/retarget.py): the driver's neutral maps onto the avatar's
   neutral, so another person's resting face and head position become the avatar's. The
   driver neutral is taken from the video itself, before rendering (offline we can look ahead):
   `calmest` (default) uses the one-second window of tracked frames whose expression weights are
   lowest on average (robust to a driver who starts mid-smile); `first-second` uses the first
   second of tracked frames, as the live loop does. Either way it is the per-channel median
   expression, median translation and chordal mean rotation of those frames
   (retarget.NeutralCalibrator). The avatar's neutral is expression 0, rotation 0 (frontal) and
   its `anchor_translation` (where its camera frames the head).
3. Every driver frame gives one output frame (generator -> rasterizer -> SR); frames without a
   face hold the nearest earlier tracked frame (runtime/offline.py). `--side-by-side`
   puts the driver frame, scaled to the avatar's height, to the left of the avatar.
`--avatar demo` (the default) is the built-in mannequin, shipped prebuilt.
The output is written atomically (runtime.video_writer.VideoWriter).
"""
from __future__ import annotations

import argparse

from runtime.options import NEUTRALS, add_raster_argument, raster_choice


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reenact", help="drive an avatar with a face video, offline, to MP4",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--avatar", default="demo", help="avatar directory, or 'demo' for the built-in mannequin (default)")
    p.add_argument("--driver", required=True, help="driving face video")
    p.add_argument("--out", required=True, help="output video, .mp4")
    p.add_argument("--side-by-side", action="store_true", help="put the driver frame beside the avatar")
    add_raster_argument(p)
    p.add_argument("--start", type=int, default=0, help="first driver frame to use (default 0)")
    p.add_argument("--frames", type=int, default=None, help="number of driver frames to use (default: all)")
    p.add_argument("--neutral", choices=NEUTRALS, default="calmest",
                   help="which driver frames define their neutral face (default: calmest second)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from avatar.backend_device import backend_device
    from avatar.checkpoint import load_avatar
    from avatar.super_resolution import SR_FACTOR
    from runtime.live_loop import side_by_side
    from runtime.offline import render_frames, retargeted_sequence
    from runtime.pipeline import avatar_neutral, resolve_avatar_dir
    from runtime.video_writer import VideoWriter
    from tracking.tracker import track_video
    from tracking.video_frames import open_video

    if not str(args.out).lower().endswith(".mp4"):
        raise ValueError(f"{args.out}: output video must end in .mp4")
    if args.start < 0 or (args.frames is not None and args.frames < 1):
        raise ValueError("--start must be >= 0 and --frames >= 1")
    raster = raster_choice(args)
    device = backend_device(raster, "--raster")
    video = open_video(args.driver)  # fails fast on a missing file or a non-video
    if video.frame_count and args.start >= video.frame_count:
        raise ValueError(f"{args.driver}: --start {args.start} is past the last frame ({video.frame_count} frames)")
    if args.start or args.frames is not None:
        count = args.frames if args.frames is not None else max(1, video.frame_count - args.start)
        video = video.clip(args.start, count)
    avatar = load_avatar(resolve_avatar_dir(args.avatar))

    def progress(frames):
        return tqdm(frames, total=video.frame_count or None, desc="track", unit="frame")

    result = track_video(video, progress=progress)
    if result.detections.interrupted:
        raise KeyboardInterrupt
    params = result.params
    if params.num_frames == 0:
        raise ValueError(f"{args.driver}: no frames to read")
    if not params.valid.any():
        raise ValueError(f"{args.driver}: no face found in any frame; nothing to drive the avatar with")
    print(result.missing_report())
    expressions, poses = retargeted_sequence(params, avatar_neutral(avatar), args.neutral)

    height = SR_FACTOR * avatar.camera.height
    width = SR_FACTOR * avatar.camera.width
    if args.side_by_side:
        width += max(1, round(video.width * height / video.height))
    driver_frames = video.frames() if args.side_by_side else None
    with VideoWriter(args.out, params.fps, width, height) as writer:
        frames = render_frames(avatar, expressions, poses, raster, device)
        for frame in tqdm(frames, total=len(poses), desc="render", unit="frame"):
            if driver_frames is not None:
                frame = side_by_side(next(driver_frames).rgb, frame)
            writer.write(frame)
    print(f"wrote {writer.frames_written} frames ({writer.width}x{writer.height}, {params.fps:g} fps) to {args.out}")
    return 0
