"""`splatcam live`: drive an avatar from a webcam (or a video) in real time.

    splatcam live [--avatar DIR|demo] [--camera INDEX | --video FILE] [--virtual-camera] [--window]
                  [--out FILE.mp4] [--backend auto|torch|compile|onnxruntime|tensorrt]
                  [--raster cpu|gsplat] [--fps N] [--size N] [--max-frames N]

Webcam (or a video played at its own rate, like a camera) -> face tracker -> neutral
calibration and retargeting -> avatar -> the sinks asked for. Without any sink option: the
virtual camera when a v4l2loopback device exists, else a preview window when there is a
display, else the file out/live.mp4; the choice and the reason are printed.

Keys in the window: c recalibrates the neutral face (hold still, neutral, for a second), o
toggles the tracking overlay, l prints the latency report, q or Esc quits. In a terminal,
Enter prints the latency report; Ctrl+C stops (sinks closed, the video file finalised).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from pathlib import Path

from runtime.options import INFERENCE_BACKENDS, RASTERS, add_overlap_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("live", help="drive an avatar from a webcam into a virtual camera, window or file",
                              description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--avatar", default="demo", help="avatar directory, or 'demo' for the built-in mannequin")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=None, metavar="INDEX", help="webcam number (default 0)")
    source.add_argument("--video", default=None, metavar="FILE",
                        help="drive from a video file, played at its own frame rate like a webcam")
    p.add_argument("--virtual-camera", action="store_true", help="send to a virtual camera (pyvirtualcam)")
    p.add_argument("--virtual-camera-device", default=None, metavar="PATH",
                   help="which virtual camera, e.g. /dev/video10 (default: the first one)")
    p.add_argument("--window", action="store_true", help="show a preview window with key controls")
    p.add_argument("--out", default=None, metavar="FILE.mp4", help="also record the output to this MP4")
    p.add_argument("--backend", choices=INFERENCE_BACKENDS, default="auto",
                   help="inference backend for the generator and the SR CNN (auto: the fastest here)")
    p.add_argument("--raster", choices=RASTERS, default=None,
                   help="rasterizer (default: gsplat with CUDA, else cpu)")
    p.add_argument("--fps", type=float, default=None, help="output frame rate (default: the source's)")
    p.add_argument("--size", type=int, default=None, metavar="N",
                   help="output width in pixels, a multiple of 4 (default: the avatar's trained size)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    p.add_argument("--follow-depth", action="store_true",
                   help="move the avatar nearer / farther as you do (default: keep its framing; "
                        "depth from a webcam also reacts to mouth opening)")
    add_overlap_argument(p)


def check_arguments(args: argparse.Namespace) -> None:
    import math

    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise ValueError(f"--fps must be a positive number, got {args.fps}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.out is not None and not str(args.out).lower().endswith(".mp4"):
        raise ValueError(f"{args.out}: output video must end in .mp4")
    if args.size is not None and (args.size < 4 or args.size % 4):
        raise ValueError(f"--size must be a positive multiple of 4, got {args.size}")
    if args.video is not None and not Path(args.video).is_file():
        raise FileNotFoundError(f"{args.video}: no such video file")


def _report_on_enter(loop) -> None:
    """Enter in the terminal prints the latency report (a daemon thread; dies with the process)."""
    def read() -> None:
        for _ in sys.stdin:
            loop.request_report()

    threading.Thread(target=read, name="splatcam-stdin", daemon=True).start()


def run(args: argparse.Namespace) -> int:
    from capture.frame_source import CaptureError
    from core.errors import UserError
    from runtime.live_config import LiveConfig
    from runtime.live_loop import LiveLoop, format_latency_report
    from runtime.live_setup import default_sinks, open_live_source, open_renderer, open_sinks, pick_raster
    from runtime.pipeline import LiveDriver, avatar_neutral
    from tracking.face_model import load_face_model_data
    from tracking.overlay import OverlayRenderer
    from tracking.tracker import LiveTracker

    check_arguments(args)
    raster = pick_raster(args.raster)
    want = {"virtual_camera": args.virtual_camera, "window": args.window, "out": args.out}
    if not any(want.values()):
        want, why = default_sinks()
        chosen = want.get("out") or next(iter(want)).replace("_", " ")
        print(f"live: output to {chosen} because {why}", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_live_source(args.video, args.camera))  # first: a bad video fails before the slow set-up
        avatar, renderer = open_renderer(args.avatar, args.backend, raster, args.size)
        data = load_face_model_data()
        fps = args.fps or source.fps
        sinks, window, outputs = open_sinks(stack, want, renderer.width, renderer.height, fps,
                                            args.virtual_camera_device)
        config = LiveConfig(fps=fps, max_frames=args.max_frames, overlap=args.overlap,
                            follow_depth=args.follow_depth)
        driver = LiveDriver.from_config(avatar_neutral(avatar), config)

        def overlay():
            return OverlayRenderer(data, tracker.camera, tracker.fitter.identity.numpy())

        tracker = LiveTracker(source.width, source.height, data=data)  # closed by the loop
        loop = LiveLoop(source, tracker, driver, renderer, sinks, window, config, overlay=overlay)
        if sys.stdin is not None and sys.stdin.isatty():
            _report_on_enter(loop)
        print(f"live: {source.name} ({source.width}x{source.height}) -> avatar {args.avatar} "
              f"({renderer.backend.name} on {renderer.device}: {renderer.backend.reason}; raster {raster}) -> "
              f"{', '.join(outputs)} at {renderer.width}x{renderer.height}, {fps:g} fps. "
              f"Hold a neutral face for the first seconds; Ctrl+C stops"
              f"{', Enter prints the latency' if sys.stdin is not None and sys.stdin.isatty() else ''}.",
              file=sys.stderr)
        try:
            report = loop.run()
        except CaptureError as e:
            raise UserError(str(e)) from None
    if report.summary is not None:
        print(format_latency_report(report.summary), file=sys.stderr)
    print(f"live: {report.frames} frames sent; a face in {report.tracked} of the {report.tracked + report.lost} "
          f"frames tracked; {report.dropped} camera frames dropped"
          f"{f'; stopped by {report.stop_signal}' if report.interrupted else ''}", file=sys.stderr)
    if want.get("out"):
        print(f"live: recorded {want['out']}", file=sys.stderr)
    return 0
