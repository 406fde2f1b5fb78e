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
from pathlib import Path

from runtime.options import NEUTRALS, add_raster_argument, raster_choice


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reenact", help="drive an avatar with a face video, offline, to MP4",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--avatar", default="demo", help="avatar directory, or 'demo' for the built-in mannequin (default)")
    p.add_argument("--driver", required=True, help="driving face video")
    p.add_argument("--out", required=True, help="output video, .mp4")
    p.add_argument("--side-by-side", action="store_true", help="put the driver frame beside the avatar")
    p.add_argument("--poster", default=None, metavar="FILE.png",
                   help="also write six key frames (calmest, jaw open, blink, smile, head turned left and "
                        "right, by the driver's tracking), driver above avatar, as one PNG")
    add_raster_argument(p)
    p.add_argument("--start", type=int, default=0, help="first driver frame to use (default 0)")
    p.add_argument("--frames", type=int, default=None, help="number of driver frames to use (default: all)")
    p.add_argument("--neutral", choices=NEUTRALS, default="calmest",
                   help="which driver frames define their neutral face (default: calmest second)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    from tqdm import tqdm

    from avatar.backend_device import backend_device
    from avatar.checkpoint import load_avatar
    from runtime.live_loop import side_by_side
    from runtime.offline import render_frames, retargeted_sequence
    from runtime.pipeline import avatar_neutral, resolve_avatar_dir
    from runtime.video_writer import VideoWriter
    from tracking.tracker import track_video
    from tracking.video_frames import open_video

    if not str(args.out).lower().endswith(".mp4"):
        raise ValueError(f"{args.out}: output video must end in .mp4")
    if args.poster is not None and not str(args.poster).lower().endswith(".png"):
        raise ValueError(f"{args.poster}: poster must end in .png")
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

    height = avatar.sr.factor * avatar.camera.height
    width = avatar.sr.factor * avatar.camera.width
    if args.side_by_side:
        width += max(1, round(video.width * height / video.height))
    key = key_frames(params) if args.poster is not None else []
    tiles: dict[int, np.ndarray] = {}
    driver_frames = video.frames() if args.side_by_side or key else None
    with VideoWriter(args.out, params.fps, width, height) as writer:
        frames = render_frames(avatar, expressions, poses, raster, device)
        for i, frame in enumerate(tqdm(frames, total=len(poses), desc="render", unit="frame")):
            driver = next(driver_frames).rgb if driver_frames is not None else None
            if i in key:
                above = cv2.resize(driver, (frame.shape[1], round(driver.shape[0] * frame.shape[1] / driver.shape[1])),
                                   interpolation=cv2.INTER_AREA)
                tiles[i] = np.concatenate([above, frame], 0)
            writer.write(side_by_side(driver, frame) if args.side_by_side else frame)
    print(f"wrote {writer.frames_written} frames ({writer.width}x{writer.height}, {params.fps:g} fps) to {args.out}")
    if key:
        Path(args.poster).parent.mkdir(parents=True, exist_ok=True)
        strip = np.concatenate([tiles[i] for i in key if i in tiles], 1)
        if not cv2.imwrite(str(args.poster), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)):
            raise ValueError(f"{args.poster}: could not write the poster")
        print(f"wrote {args.poster} (driver frames {', '.join(str(i) for i in key)})")
    return 0


def key_frames(params) -> list[int]:
    """Six telling driver frames from its tracking: the calmest, the widest jaw, the fullest blink,
    the broadest smile, and the head turned furthest either way (only frames with a face)."""
    import numpy as np

    from tracking.params import expression_index

    valid = np.flatnonzero(params.valid)
    e = params.expression[valid]

    def weight(*names: str) -> np.ndarray:
        return e[:, [expression_index(n) for n in names]].mean(1)

    yaw = params.rotation[valid, 1]
    picks = [np.argmin(np.abs(e).sum(1)), np.argmax(weight("jawOpen")),
             np.argmax(weight("eyeBlink_L", "eyeBlink_R")), np.argmax(weight("mouthSmile_L", "mouthSmile_R")),
             np.argmin(yaw), np.argmax(yaw)]
    return [int(valid[i]) for i in picks]
