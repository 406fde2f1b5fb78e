"""`splatcam prepare`: a video of a person to a training dataset folder.

    splatcam prepare VIDEO --out DS [--size 512] [--holdout 0.1] [--max-frames N] [--fov 60]
                     [--no-pose-refine]
    splatcam prepare VIEWS_DIR --out DS [--size 512] [--holdout 0.1]     (multi-view, see below)

Tracks the face (one ICT identity for the whole video, pose and expression per frame), crops one
stable square around the head for the whole video, removes the background (MediaPipe selfie
segmentation) and composites on white, resizes to --size, and holds out the last --holdout
fraction of frames for evaluation. Then every frame's head pose is refined on the high-passed
texture of the skin: held out, `cpu` avatars of three people scored +0.90, +2.11 and -0.14 dB
against the landmark poses (BENCHMARKS.md, "Tenth round"). --no-pose-refine keeps the
landmark fit's poses (a minute or two faster).
Frames without a face are dropped and counted. The folder format is documented in
avatar/dataset.py; a folder with `calibration.json` is read as multi-view data (format in the
same place).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("prepare", help="turn a video of a person into a training dataset",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file, or a multi-view folder with calibration.json")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--size", type=int, default=512, help="side of the square frames (default 512)")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of frames held out at the end (default 0.1)")
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N frames")
    p.add_argument("--fov", type=float, default=None, help="assumed diagonal field of view, degrees (default 60)")
    p.add_argument("--pose-refine", dest="refine_pose", action=argparse.BooleanOptionalAction, default=None,
                   help="refine the landmark fit's head poses on the skin's texture (default: on; "
                        "--no-pose-refine keeps the landmark poses)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from avatar import dataset

    source = Path(args.video)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {args.max_frames}")

    def progress(iterable, label, total):
        return tqdm(iterable, desc=label, total=total or None, unit="step" if label == "photometric pose" else "frame")

    if source.is_dir():
        if args.refine_pose:
            raise ValueError("--pose-refine works on a single video, not on multi-view folders")
        report = dataset.prepare_multiview(source, args.out, size=args.size, holdout=args.holdout,
                                           max_frames=args.max_frames, progress=progress)
    else:
        report = dataset.prepare_video(source, args.out, size=args.size, holdout=args.holdout,
                                       max_frames=args.max_frames, fov_deg=args.fov,
                                       refine_pose=args.refine_pose is not False,
                                       progress=progress)
    print(f"wrote {args.out}: {report.summary()}")
    return 0
