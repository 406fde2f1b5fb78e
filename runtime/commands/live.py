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

DEFAULT_OUT = Path("out") / "live.mp4"
INFERENCE_BACKENDS = ("auto", "torch", "compile", "onnxruntime", "tensorrt")
RASTERS = ("cpu", "gsplat")


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


def add_overlap_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overlap", action=argparse.BooleanOptionalAction, default=None,
                   help="render frame t in a worker thread while tracking frame t+1 (default: on with CUDA)")


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


def pick_raster(raster: str | None) -> str:
    """The rasterizer asked for, or gsplat when it can run here (CUDA, the package and its
    compiled kernels), else cpu."""
    from avatar.backend_device import backend_device
    from avatar.raster.gsplat_backend import gsplat_ready

    if raster is not None:
        backend_device(raster, "--raster")
        return raster
    return "gsplat" if gsplat_ready() is None else "cpu"


def open_renderer(avatar_spec: str, backend_name: str, raster: str, size: int | None):
    """(avatar, renderer) for the avatar directory (or 'demo') on the device the rasterizer needs."""
    from avatar.checkpoint import load_avatar
    from runtime.inference import create_backend
    from runtime.pipeline import AvatarRenderer, resolve_avatar_dir

    avatar = load_avatar(resolve_avatar_dir(avatar_spec))
    device = "cuda" if raster == "gsplat" else "cpu"
    backend = create_backend(backend_name, avatar, device=device)
    return avatar, AvatarRenderer(avatar, backend, raster=raster, size=size)


def open_source(args: argparse.Namespace):
    if args.video is not None:
        from capture.video_file import VideoFileSource
        return VideoFileSource(args.video, pace=True)
    from capture.webcam import WebcamSource
    return WebcamSource(0 if args.camera is None else args.camera)


def default_sinks() -> tuple[dict[str, bool | str], str]:
    """Which sink to use when none was asked for, and why (module docstring)."""
    from capture.devices import list_video_devices
    from runtime.sinks.base import SinkUnavailable
    from runtime.sinks.window import require_display

    loopbacks = [d.path for d in list_video_devices() if d.loopback]
    if loopbacks:
        return {"virtual_camera": True}, f"a virtual camera exists ({loopbacks[0]})"
    try:
        require_display()
    except SinkUnavailable as e:
        return {"out": str(DEFAULT_OUT)}, f"no virtual camera (no v4l2loopback device) and {e.args[0].split(';')[0]}"
    return {"window": True}, "no virtual camera (no v4l2loopback device), but a display"


def open_sinks(stack: contextlib.ExitStack, want: dict, width: int, height: int, fps: float,
               device: str | None = None):
    """(stream sinks, window or None, their descriptions), each registered on `stack` to be closed."""
    from runtime.live_loop import live_keymap

    sinks, window, described = [], None, []
    if want.get("virtual_camera"):
        from runtime.sinks.virtual_camera import VirtualCameraSink
        camera = stack.enter_context(VirtualCameraSink(width, height, fps, device=device))
        sinks.append(camera)
        described.append(f"virtual camera {camera.device}")
    if want.get("out"):
        from runtime.sinks.file import FileSink
        sinks.append(stack.enter_context(FileSink(want["out"], fps)))
        described.append(f"file {want['out']}")
    if want.get("window"):
        from runtime.sinks.window import WindowSink
        window = stack.enter_context(WindowSink(keymap=live_keymap()))
        described.append("window (keys: c recalibrate, o overlay, l latency, q quit)")
    return sinks, window, described


def _report_on_enter(loop) -> None:
    """Enter in the terminal prints the latency report (a daemon thread; dies with the process)."""
    def read() -> None:
        for _ in sys.stdin:
            loop.request_report()

    threading.Thread(target=read, name="splatcam-stdin", daemon=True).start()


def run(args: argparse.Namespace) -> int:
    from capture.source import CaptureError
    from core.errors import UserError
    from runtime.live_config import LiveConfig
    from runtime.live_loop import LiveLoop, format_latency_report
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
        source = stack.enter_context(open_source(args))  # first: a bad video fails before the slow set-up
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
