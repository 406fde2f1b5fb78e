"""`splatcam bench-track`: how fast the tracker runs, and how well it fits, on one video.

    splatcam bench-track VIDEO [--size 640x480] [--reference dlib] [--json OUT.json]

Runs the whole tracker (tracking/tracker.py) on the video, optionally resized first (as a
stand-in for a webcam of that size), and reports per frame: landmark detection ms (including the
detector's downscale), fit ms (warm-started per-frame fit plus smoothing), their total as frames
per second; the one-off identity fit; and the accuracy numbers of tracking/track_metrics.py:
the median 68-landmark residual to the tracker's own detector (in % of the inter-ocular
distance), with `--reference` the median error against another detector's 68 points on the same
frames (all 68, and the 51 inside the face outline, which detectors define differently), and
the pose jitter on fixed one-second windows.
Decoding and resizing the video are not counted. Threads: torch uses what it is given (the
command does not change it); MediaPipe runs its own.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tracking.landmarks.registry import BACKENDS as LANDMARK_BACKENDS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench-track", help="benchmark the face tracker on a video",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file")
    p.add_argument("--size", default=None, help="resize frames to WxH first, e.g. 640x480")
    p.add_argument("--fov", type=float, default=60.0, help="assumed diagonal field of view, degrees")
    p.add_argument("--reference", choices=[b for b in LANDMARK_BACKENDS if b != "mediapipe"], default=None,
                   help="also measure the fit against this detector's 68 points (an independent check)")
    p.add_argument("--json", default=None, help="also write the numbers as JSON to this file")
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 640x480, got {text!r}") from None
    if w < 64 or h < 64:
        raise ValueError(f"--size must be at least 64x64, got {text}")
    return w, h


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from tracking.fit_config import FitConfig
    from tracking.landmarks.registry import create_backend
    from tracking.track_metrics import landmark_errors, window_jitter
    from tracking.tracker import TrackConfig, detect_video, track_video
    from tracking.video_frames import open_video

    size = parse_size(args.size) if args.size else None
    video = open_video(args.video)
    if size is not None:
        video = video.resized(*size)

    def progress(frames):
        return tqdm(frames, total=video.frame_count or None, desc="bench-track", unit="frame")

    config = TrackConfig(fit=FitConfig(fov_deg=args.fov))
    reference = create_backend(args.reference) if args.reference else None  # fails before the long run
    result = track_video(video, config, progress=progress)
    valid = result.params.valid
    if not valid.any():
        raise ValueError(f"{args.video}: no face found in any frame; nothing to benchmark")
    lm_ms, fit_ms = result.detections.landmark_ms, result.fit_ms[valid]
    errors = landmark_errors(result.fitted68, result.detections.ibug68())
    jitter = window_jitter(result.params.rotation, valid, result.params.fps)
    against = None
    if reference is not None:
        try:
            reference68 = detect_video(video, reference, config.max_side).ibug68()
        finally:
            reference.close()
        found = np.isfinite(result.fitted68).all((1, 2)) & np.isfinite(reference68).all((1, 2))
        ref_errors = landmark_errors(result.fitted68, reference68)
        against = {"detector": args.reference, "frames": int(found.sum()),
                   "error_iod_median_pct": round(100 * float(np.median(ref_errors)), 3),
                   "error_inner51_iod_median_pct": round(100 * float(np.median(ref_errors[:, 17:])), 3)}
    per_frame = float(np.median(lm_ms) + np.median(fit_ms))
    report = {
        "video": Path(args.video).name,
        "size": [video.width, video.height],
        "frames": int(result.params.num_frames),
        "frames_with_face": int(valid.sum()),
        "torch_threads": torch.get_num_threads(),
        "landmarks_ms": _stats(lm_ms),
        "fit_ms": _stats(fit_ms),
        "identity_fit_ms": round(result.identity_ms, 1),
        "total_ms_p50": round(per_frame, 2),
        "fps": round(1000.0 / per_frame, 1),
        "residual_iod_median_pct": round(100 * float(np.median(errors)), 3),
        "reference": against,
        "jitter_acceleration_deg": None if jitter is None else round(jitter.acceleration_deg, 4),
        "jitter_step_deg": None if jitter is None else round(jitter.step_deg, 4),
        "jitter_windows": 0 if jitter is None else jitter.windows,
    }
    print(f"{report['video']} {video.width}x{video.height}, {report['frames']} frames "
          f"({report['frames_with_face']} with a face), torch threads {report['torch_threads']}")
    print(f"{'stage':<12}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    for name in ("landmarks_ms", "fit_ms"):
        s = report[name]
        print(f"{name[:-3]:<12}{s['p50']:>9.2f}{s['p95']:>9.2f}{s['mean']:>9.2f}")
    print(f"total {report['total_ms_p50']:.2f} ms/frame (p50) = {report['fps']:.1f} fps; "
          f"identity fit {report['identity_fit_ms']:.0f} ms once")
    print(f"residual to its own detector (median, % IOD) {report['residual_iod_median_pct']:.2f}")
    if against is not None:
        print(f"error against {against['detector']} (median, % IOD, {against['frames']} frames): all 68 "
              f"{against['error_iod_median_pct']:.2f}, inner 51 {against['error_inner51_iod_median_pct']:.2f}")
    if jitter is None:
        print("jitter: n/a (no one-second window with a face in every frame)")
    else:
        print(f"jitter over {jitter.windows} one-second windows (median RMS): {jitter.acceleration_deg:.3f} deg "
              f"from constant angular velocity, {jitter.step_deg:.3f} deg frame to frame")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _stats(values) -> dict[str, float]:
    import numpy as np

    return {"p50": round(float(np.percentile(values, 50)), 3), "p95": round(float(np.percentile(values, 95)), 3),
            "mean": round(float(np.mean(values)), 3)}
