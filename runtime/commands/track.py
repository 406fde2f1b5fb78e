"""`splatcam track`: a video to a per-frame coefficient file (and optionally a diagnostic overlay).

    splatcam track VIDEO --out P.npz [--overlay OVERLAY.mp4] [--tracker fit|blendshapes]

P.npz (DESIGN.md): expression (T, 53), rotation (T, 3), translation (T, 3), identity (100,),
valid (T,), fps, expression_names. `--tracker fit` (default) fits the ICT model to MediaPipe's
landmarks (identity once, then pose and expression per frame, see tracking/tracker.py);
`--tracker blendshapes` takes MediaPipe Face Landmarker's own blendshape scores and head
transform instead (no identity: zeros). Frames without a face are flagged in `valid`, hold the
last good value and are listed in the report; a video with no face at all still gives a valid
file with every frame flagged. Ctrl+C during tracking writes the frames tracked so far.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tracking.fit_config import FitConfig
from tracking.landmarks.registry import BACKENDS as LANDMARK_BACKENDS, SCHEMES

DEFAULT_FOV = FitConfig().fov_deg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("track", help="track a face video into expression/pose coefficients (.npz)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file")
    p.add_argument("--out", required=True, help="output coefficient file (.npz)")
    p.add_argument("--overlay", default=None, help="also write a diagnostic overlay video (.mp4)")
    p.add_argument("--tracker", choices=["fit", "blendshapes"], default="fit",
                   help="fit: 3DMM fit to landmarks (default); blendshapes: MediaPipe's blendshape scores")
    p.add_argument("--landmarks", choices=LANDMARK_BACKENDS, default="mediapipe",
                   help="landmark detector the fit follows (default mediapipe; dlib and face-alignment "
                        "are optional installs giving 68 points)")
    p.add_argument("--fov", type=float, default=DEFAULT_FOV,
                   help=f"assumed diagonal field of view of the camera, degrees (default {DEFAULT_FOV:g})")
    p.add_argument("--max-side", type=int, default=640,
                   help="frames larger than this are downscaled for the landmark detector (default 640)")
    p.add_argument("--no-smooth", action="store_true", help="write the raw per-frame fits, unsmoothed")
    p.add_argument("--pose-min-cutoff", type=float, default=None, help="One Euro min cutoff (Hz) for head pose")
    p.add_argument("--pose-beta", type=float, default=None, help="One Euro beta for head pose")
    p.add_argument("--expression-min-cutoff", type=float, default=None, help="One Euro min cutoff (Hz) for expression")
    p.add_argument("--expression-beta", type=float, default=None, help="One Euro beta for expression")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """TrackConfig from the command line; unset smoothing options keep the defaults."""
    from dataclasses import replace

    from tracking.fit_config import fit_config_for
    from tracking.smoothing import SmoothingConfig
    from tracking.tracker import TrackConfig

    smoothing = SmoothingConfig()

    def tuned(group, min_cutoff, beta):
        changes = {k: v for k, v in (("min_cutoff", min_cutoff), ("beta", beta)) if v is not None}
        return replace(group, **changes)

    pose = (args.pose_min_cutoff, args.pose_beta)
    smoothing = SmoothingConfig(expression=tuned(smoothing.expression, args.expression_min_cutoff, args.expression_beta),
                                rotation=tuned(smoothing.rotation, *pose),
                                translation=tuned(smoothing.translation, *pose))
    fit = fit_config_for(SCHEMES[args.landmarks], fov_deg=args.fov)
    return TrackConfig(fit=fit, smoothing=smoothing, smooth=not args.no_smooth,
                       landmarks=args.landmarks, max_side=args.max_side)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tracking.params_file import write_params
    from tracking.tracker import track_video
    from tracking.video_frames import open_video

    out = Path(args.out)
    if out.suffix != ".npz":
        raise ValueError(f"{out}: output must end in .npz")
    if args.overlay is not None and Path(args.overlay).suffix.lower() != ".mp4":
        raise ValueError(f"{args.overlay}: overlay video must end in .mp4")
    config = build_config(args)
    video = open_video(args.video)  # fails fast on a missing file or a non-video

    def progress(frames):
        return tqdm(frames, total=video.frame_count or None, desc="track", unit="frame")

    if args.tracker == "fit":
        result = track_video(video, config, progress=progress)
    else:
        if args.landmarks != "mediapipe":
            raise ValueError("--tracker blendshapes takes MediaPipe's own scores; it cannot use --landmarks "
                             f"{args.landmarks}")
        from tracking.blendshape_sequence import track_video_blendshapes
        result = track_video_blendshapes(video, config, progress=progress)
    params = result.params
    if result.detections.interrupted and params.num_frames == 0:
        raise KeyboardInterrupt
    if params.num_frames > 0 and not params.valid.any():
        raise ValueError(f"{args.video}: no face found in any of its {params.num_frames} frames; nothing written")
    write_params(out, params)
    print(f"{video.path.name}: {params.num_frames} frames, {video.width}x{video.height}, {params.fps:g} fps")
    print(result.missing_report())
    if result.detections.interrupted:
        print(f"interrupted: wrote the {params.num_frames} frames tracked so far to {out}; no overlay")
        return 130
    print(f"wrote {out}")
    if args.overlay is not None:
        write_overlay(args.overlay, video, result)
        print(f"wrote {args.overlay}")
    return 0


def write_overlay(path: str, video, result) -> None:
    """Second pass over the video drawing what was tracked (tracking/overlay.py)."""
    from tqdm import tqdm

    from runtime.video_writer import VideoWriter
    from tracking.driving_frame import DrivingFrame
    from tracking.face_model import load_face_model_data
    from tracking.overlay import OverlayRenderer

    params = result.params
    renderer = OverlayRenderer(load_face_model_data(), result.camera, params.identity)
    with VideoWriter(path, params.fps, video.width, video.height) as writer:
        for frame in tqdm(video.frames(), total=params.num_frames, desc="overlay", unit="frame"):
            i = frame.index
            if i >= params.num_frames:
                break
            shown = DrivingFrame(params.expression[i], params.rotation[i], params.translation[i])
            writer.write(renderer(frame.rgb, shown, bool(params.valid[i])))
