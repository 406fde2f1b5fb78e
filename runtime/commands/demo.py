"""`splatcam demo`: the live loop on built-in defaults, choosing what this machine has.

    splatcam demo [--out FILE.mp4] [--backend ...] [--fps N]

Driver: the webcam if one is present, else the built-in procedural driver (tracking/procedural.py:
smile, blinks, jaw open, pucker, gaze, head turn; one pass of the script). Avatar: the built-in
mannequin (shipped prebuilt; no face model needed). Output: the virtual camera if a v4l2loopback
device exists, else a preview window if there is a display, else out/demo.mp4. Every choice is
printed with its reason. With a webcam the demo runs until Ctrl+C (or q in the window).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

DEFAULT_OUT = Path("out") / "demo.mp4"
PROCEDURAL_FPS = 15.0  # what the CPU path sustains at 256 px; the file plays at this rate


def register(subparsers: argparse._SubParsersAction) -> None:
    from runtime.options import INFERENCE_BACKENDS

    p = subparsers.add_parser("demo", help="run the live loop on built-in defaults (webcam or scripted driver)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, metavar="FILE.mp4",
                   help=f"record to this file (default: {DEFAULT_OUT} when there is no virtual camera or display)")
    p.add_argument("--backend", choices=INFERENCE_BACKENDS, default="auto", help="inference backend (default auto)")
    p.add_argument("--fps", type=float, default=None, help="output rate (default: the webcam's, or 15 scripted)")
    p.add_argument("--procedural", action="store_true", help="use the scripted driver even if a webcam is present")
    p.add_argument("--poster", default=None, metavar="FILE.png",
                   help="instead of running, render the script's key moments side by side into a PNG")
    p.set_defaults(func=run)


# Moments of the script shown by --poster (seconds): neutral, smile, blink, jaw open, pucker, turn.
POSTER_TIMES = (0.5, 2.5, 4.12, 6.4, 8.2, 12.2)


def write_poster(path: str, avatar, renderer) -> None:
    """The scripted driver's key moments through the demo avatar, left to right, as one PNG."""
    import cv2
    import numpy as np

    from runtime.pipeline import avatar_neutral
    from tracking.driving_frame import DrivingFrame
    from tracking.procedural import scripted_frame

    if not path.lower().endswith(".png"):
        raise ValueError(f"{path}: poster must end in .png")
    anchor = avatar_neutral(avatar).translation
    tiles = []
    for t in POSTER_TIMES:
        f = scripted_frame(t)
        tiles.append(renderer.render(DrivingFrame(f.expression, f.rotation, anchor)))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(np.concatenate(tiles, 1), cv2.COLOR_RGB2BGR)):
        raise ValueError(f"{path}: could not write the poster")


def find_webcam() -> tuple[int | None, str]:
    """(index of a webcam or None, why)."""
    from capture.devices import list_video_devices

    if not sys.platform.startswith("linux"):
        return 0, "using webcam 0 (device listing is only available on Linux)"
    cameras = [d for d in list_video_devices() if d.can_capture and not d.loopback]
    if cameras:
        return cameras[0].index, f"webcam found: {cameras[0].describe()}"
    return None, ("no webcam found, so the built-in procedural driver (smile, blinks, jaw open, pucker, gaze, "
                  "head turn) drives")


def choose_output(out: str | None) -> tuple[dict, str]:
    if out is not None:
        if not out.lower().endswith(".mp4"):
            raise ValueError(f"{out}: output video must end in .mp4")
        return {"out": out}, "asked for with --out"
    from runtime.live_setup import default_sinks

    want, why = default_sinks()
    if "out" in want:
        want = {"out": str(DEFAULT_OUT)}
    return want, why


def run(args: argparse.Namespace) -> int:
    from capture.synthetic import SyntheticSource
    from runtime.live_setup import open_renderer, open_sinks, pick_raster
    from runtime.live_config import LiveConfig
    from runtime.live_loop import LiveLoop, format_latency_report
    from runtime.pipeline import LiveDriver, avatar_neutral
    from tracking.procedural import DURATION_S, ProceduralTracker

    if args.poster is not None:
        avatar, renderer = open_renderer("demo", args.backend, pick_raster(None), None)
        write_poster(args.poster, avatar, renderer)
        print(f"demo: wrote {args.poster}")
        return 0
    index, why_source = (None, "scripted driver asked for") if args.procedural else find_webcam()
    print(f"demo: driver: {why_source}", file=sys.stderr)
    want, why_sink = choose_output(args.out)
    target = want.get("out") or next(iter(want)).replace("_", " ")
    print(f"demo: output: {target} ({why_sink})", file=sys.stderr)
    print("demo: avatar: the built-in mannequin (shipped prebuilt)", file=sys.stderr)
    raster = pick_raster(None)
    avatar, renderer = open_renderer("demo", args.backend, raster, None)
    print(f"demo: inference backend {renderer.backend.name} on {renderer.device} ({renderer.backend.reason}), "
          f"rasterizer {raster}", file=sys.stderr)

    with contextlib.ExitStack() as stack:
        if index is None:
            fps = args.fps or PROCEDURAL_FPS
            source = stack.enter_context(SyntheticSource(fps=fps, count=int(DURATION_S * fps), pace=True))
            tracker = ProceduralTracker(loop=False)
        else:
            from capture.webcam import WebcamSource
            from tracking.tracker import LiveTracker

            source = stack.enter_context(WebcamSource(index))
            fps = args.fps or source.fps
            tracker = LiveTracker(source.width, source.height)
        sinks, window, outputs = open_sinks(stack, want, renderer.width, renderer.height, fps)
        config = LiveConfig(fps=fps)
        driver = LiveDriver.from_config(avatar_neutral(avatar), config)
        loop = LiveLoop(source, tracker, driver, renderer, sinks, window, config)
        print(f"demo: {renderer.width}x{renderer.height} at {fps:g} fps -> {', '.join(outputs)}; Ctrl+C stops",
              file=sys.stderr)
        report = loop.run()
    if report.summary is not None:
        print(format_latency_report(report.summary), file=sys.stderr)
    print(f"demo: {report.frames} frames rendered, {report.dropped} dropped"
          f"{f'; stopped by {report.stop_signal}' if report.interrupted else ''}", file=sys.stderr)
    if want.get("out"):
        print(f"demo: wrote {want['out']}")
    return 130 if report.interrupted else 0
