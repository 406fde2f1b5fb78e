"""`splatcam bench-track`: how fast the tracker runs, and how well it fits, on one video.

    splatcam bench-track VIDEO [--size 640x480] [--json OUT.json]

Runs the whole tracker (tracking/tracker.py) on the video, optionally resized first (as a
stand-in for a webcam of that size), and reports per frame: landmark detection ms (including the
detector's downscale), fit ms (warm-started per-frame fit plus smoothing), their total as frames
per second; the one-off identity fit; and the accuracy numbers of tracking/track_metrics.py
(median 68-landmark error in % of the inter-ocular distance, calmest-second pose jitter).
Decoding and resizing the video are not counted. Threads: torch uses what it is given (the
command does not change it); MediaPipe runs its own.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench-track", help="benchmark the face tracker on a video",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("video", help="input video file")
    p.add_argument("--size", default=None, help="resize frames to WxH first, e.g. 640x480")
    p.add_argument("--fov", type=float, default=60.0, help="assumed diagonal field of view, degrees")
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
    from tracking.landmarks.ibug68 import MEDIAPIPE_TO_IBUG68
    from tracking.track_metrics import calmest_second_jitter, landmark_errors
    from tracking.tracker import TrackConfig, track_video
    from tracking.video_frames import open_video

    size = parse_size(args.size) if args.size else None
    video = open_video(args.video)
    if size is not None:
        video = video.resized(*size)

    def progress(frames):
        return tqdm(frames, total=video.frame_count or None, desc="bench-track", unit="frame")

    result = track_video(video, TrackConfig(fit=FitConfig(fov_deg=args.fov)), progress=progress)
    valid = result.params.valid
    if not valid.any():
        raise ValueError(f"{args.video}: no face found in any frame; nothing to benchmark")
    lm_ms, fit_ms = result.detections.landmark_ms, result.fit_ms[valid]
    detected68 = np.array([p[np.asarray(MEDIAPIPE_TO_IBUG68)] if p is not None else np.full((68, 2), np.nan)
                           for p in result.detections.points])
    errors = landmark_errors(result.fitted68, detected68)
    jitter = calmest_second_jitter(result.params.rotation, valid, result.params.fps)
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
        "landmark_error_iod_median_pct": round(100 * float(np.median(errors)), 3),
        "jitter_calmest_second_deg": None if jitter is None else round(jitter.degrees, 3),
        "calmest_second_start_frame": None if jitter is None else jitter.start,
    }
    print(f"{report['video']} {video.width}x{video.height}, {report['frames']} frames "
          f"({report['frames_with_face']} with a face), torch threads {report['torch_threads']}")
    print(f"{'stage':<12}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    for name in ("landmarks_ms", "fit_ms"):
        s = report[name]
        print(f"{name[:-3]:<12}{s['p50']:>9.2f}{s['p95']:>9.2f}{s['mean']:>9.2f}")
    print(f"total {report['total_ms_p50']:.2f} ms/frame (p50) = {report['fps']:.1f} fps; "
          f"identity fit {report['identity_fit_ms']:.0f} ms once")
    jitter_text = "n/a (no second of consecutive faces)" if jitter is None else f"{jitter.degrees:.3f} deg"
    print(f"landmark error (median, % IOD) {report['landmark_error_iod_median_pct']:.2f}; "
          f"calmest-second jitter {jitter_text}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _stats(values) -> dict[str, float]:
    import numpy as np

    return {"p50": round(float(np.percentile(values, 50)), 3), "p95": round(float(np.percentile(values, 95)), 3),
            "mean": round(float(np.mean(values)), 3)}
