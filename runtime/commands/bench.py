"""`splatcam bench`: the live pipeline's latency, stage by stage, for every inference backend.

    splatcam bench --avatar DIR|demo [--driver VIDEO] [--backend NAME ...] [--frames N | --duration S]
                   [--warmup N] [--size N] [--raster cpu|gsplat] --json OUT.json [--plot OUT.png]

The driver video is played at its own frame rate, like a webcam, through the live loop
(runtime/live_loop.py) into a null sink: capture thread -> tracker -> retargeting -> generator
-> rasterizer -> SR. Without --driver the built-in procedural driver (tracking/procedural.py) runs
on blank 640x480 frames at 30 fps: everything is measured the same way except tracking, which it
replaces by reading a script (its 'track' stage is near zero). Per backend (default: every one available on the device, side by side in
one run) it reports p50 / p95 / p99 of each stage (capture = the frame's age when the loop took
it, track, generate, rasterize, sr, sink), end-to-end latency from the capture timestamp,
throughput (frames completed per second; at most the video's frame rate, as with a camera) and
the camera frames dropped because the loop was busy. On CUDA the GPU stages are timed with CUDA
events. The tracker is shared and warmed up first (its one-off identity fit is not a backend's
cost); each backend then runs `--warmup` untimed frames before its `--frames` timed ones.

The JSON has DESIGN.md's fixed shape, {"device", "backends": {NAME: {"fps", "end_to_end_ms",
"stages_ms"}}}, each backend also carrying "frames" and "dropped", and onnxruntime, when torch
ran too, "speedup_vs_torch" (ratios of torch's time to onnxruntime's: generator + SR p50,
end-to-end p50, and of fps).

A long call (`--duration SECONDS` instead of `--frames`): each backend runs that long, and its
entry also gets "minutes", one record per `--period` (default 60 s): {"minute", "seconds",
"frames", "fps", "rss_mb" (resident memory at the period's end, null off Linux),
"end_to_end_ms"}, and "soak": RSS growth from the first period to the last and end-to-end p99
drift between the first and last five periods (runtime/soak.py). The latency window then holds
about one period's frames, so the entry's own percentiles cover the last period or so and
memory stays flat however long the run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from runtime.options import INFERENCE_BACKENDS, RASTERS, add_overlap_argument

STAGES = ("capture", "track", "generate", "rasterize", "sr", "sink")
PROCEDURAL_SIZE = (640, 480)  # the blank frames the procedural driver runs on: a webcam's size
PROCEDURAL_FPS = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="latency of the live pipeline per stage, for every inference backend",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--avatar", default="demo", help="avatar directory, or 'demo' for the built-in mannequin")
    p.add_argument("--driver", default=None, metavar="VIDEO",
                   help="driving video, played like a webcam (default: the procedural driver, no tracking)")
    p.add_argument("--backend", action="append", choices=INFERENCE_BACKENDS, default=None,
                   help="inference backend to measure; repeat for several (default: every available one)")
    p.add_argument("--frames", type=int, default=100, help="timed frames per backend")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="run each backend this long instead of --frames, logging memory and latency per period")
    p.add_argument("--period", type=float, default=60.0, metavar="SECONDS",
                   help="with --duration: seconds per logged period (default 60)")
    p.add_argument("--warmup", type=int, default=10, help="untimed frames per backend before timing")
    p.add_argument("--size", type=int, default=256, metavar="N", help="output width in pixels, multiple of 4")
    p.add_argument("--raster", choices=RASTERS, default=None, help="rasterizer (default: gsplat with CUDA, else cpu)")
    p.add_argument("--json", required=True, metavar="OUT.json", help="write the results here")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="also draw the results as a bar chart")
    add_overlap_argument(p)
    p.set_defaults(func=run)


def describe_device(device: str) -> str:
    """The machine the numbers were measured on, in words."""
    import torch

    from runtime.benchmarks import cpu_model

    if device == "cuda":
        return f"cuda: {torch.cuda.get_device_name()}"
    return f"cpu: {cpu_model()}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"


def speedup(torch_entry: dict, other: dict) -> dict[str, float]:
    """How many times faster `other` is than torch eager (time ratios torch / other, fps other / torch)."""
    def model_ms(entry: dict) -> float:
        return entry["stages_ms"]["generate"]["p50"] + entry["stages_ms"]["sr"]["p50"]

    return {"generate_sr_p50": model_ms(torch_entry) / model_ms(other),
            "end_to_end_p50": torch_entry["end_to_end_ms"]["p50"] / other["end_to_end_ms"]["p50"],
            "fps": other["fps"] / torch_entry["fps"]}


def format_table(results: dict[str, dict]) -> str:
    """Rows: stages and end-to-end; columns: backends, each 'p50 / p95 / p99' in ms."""
    names = list(results)
    rows = [("", *names)]
    for stage in STAGES:
        rows.append((stage, *(_cell(results[n]["stages_ms"].get(stage)) for n in names)))
    rows.append(("end-to-end", *(_cell(results[n]["end_to_end_ms"]) for n in names)))
    rows.append(("fps", *(f"{results[n]['fps']:.1f}" for n in names)))
    rows.append(("dropped", *(str(results[n]["dropped"]) for n in names)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "ms, p50 / p95 / p99\n" + "\n".join(lines)


def _cell(p: dict | None) -> str:
    return "-" if p is None else f"{p['p50']:.1f} / {p['p95']:.1f} / {p['p99']:.1f}"


def check_arguments(args: argparse.Namespace) -> None:
    if args.frames < 5:
        raise ValueError(f"--frames must be at least 5 (percentiles of fewer mean little), got {args.frames}")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ValueError(f"--duration must be a positive number of seconds, got {args.duration}")
    if not (math.isfinite(args.period) and args.period > 0):
        raise ValueError(f"--period must be a positive number of seconds, got {args.period}")
    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    if args.size < 4 or args.size % 4:
        raise ValueError(f"--size must be a positive multiple of 4, got {args.size}")
    if not str(args.json).lower().endswith(".json"):
        raise ValueError(f"{args.json}: the results file must end in .json")
    if args.plot is not None and not str(args.plot).lower().endswith(".png"):
        raise ValueError(f"{args.plot}: the plot must end in .png")
    if args.driver is not None and not Path(args.driver).is_file():
        raise FileNotFoundError(f"{args.driver}: no such video file")


def open_driver(driver: str | None):
    """A fresh paced source for one backend's run: the video (looped), or blank procedural frames."""
    if driver is None:
        from capture.synthetic import SyntheticSource
        return SyntheticSource(PROCEDURAL_SIZE[0], PROCEDURAL_SIZE[1], fps=PROCEDURAL_FPS, pace=True)
    from capture.video_file import VideoFileSource
    return VideoFileSource(driver, pace=True, loop=True)


def measure(avatar, backend, raster: str, size: int, tracker, driver: str | None, frames: int, warmup: int,
            overlap: bool | None = None, duration: float | None = None, period: float = 60.0):
    """One backend through the live loop: its LatencySummary, and with `duration` (seconds of
    timed frames instead of `frames`) the per-period records of runtime/soak.py (else None)."""
    import time

    from tqdm import tqdm

    from runtime.live_config import LiveConfig
    from runtime.live_loop import LiveLoop
    from runtime.pipeline import AvatarRenderer, LiveDriver, avatar_neutral
    from runtime.sinks.null import NullSink
    from runtime.soak import MinuteLog

    renderer = AvatarRenderer(avatar, backend, raster=raster, size=size)
    source = open_driver(driver)
    # A long run keeps about one period of frames for its percentiles: memory must stay flat.
    window = None if duration is None else math.ceil(1.2 * period * source.fps)
    config = LiveConfig(max_frames=None if duration is not None else warmup + frames, warmup_frames=warmup,
                        report_after_frames=0, latency_window=window, overlap=overlap)
    driver_map = LiveDriver.from_config(avatar_neutral(avatar), config)
    log = MinuteLog(period) if duration is not None else None
    timed_since: list[float] = []

    def on_frame(*_) -> None:
        bar.update()
        if log is None:
            return
        log.tick(loop)
        if loop.timed_frames() and not timed_since:
            timed_since.append(time.perf_counter())
        if timed_since and time.perf_counter() - timed_since[0] >= duration:
            loop.stop()

    with tqdm(total=warmup + frames if duration is None else None, desc=f"bench {backend.name}", unit="frame") as bar:
        loop = LiveLoop(source, tracker, driver_map, renderer, [NullSink()], config=config, owns_tracker=False,
                        on_frame=on_frame)
        report = loop.run()
    if report.interrupted:
        raise KeyboardInterrupt
    if driver is not None and report.tracked == 0:
        print(f"bench: warning: no face found in {driver}; tracking and the avatar ran on held values",
              file=sys.stderr)
    return report.summary, (log.periods if log is not None else None)


def run(args: argparse.Namespace) -> int:
    import torch

    from avatar.checkpoint import load_avatar
    from capture.video_file import VideoFileSource
    from core.atomic import write_text
    from runtime.benchmarks import warm_up_tracker
    from runtime.inference import available_backends, create_backend
    from runtime.latency_plot import plot_latency
    from runtime.live_setup import pick_raster
    from runtime.pipeline import output_camera, resolve_avatar_dir
    from runtime.soak import soak_summary
    from tracking.face_model import load_face_model_data
    from tracking.procedural import ProceduralTracker
    from tracking.tracker import LiveTracker

    check_arguments(args)
    raster = pick_raster(args.raster)
    device = "cuda" if raster == "gsplat" else "cpu"
    avatar = load_avatar(resolve_avatar_dir(args.avatar))
    output_camera(avatar.camera, args.size, avatar.sr.factor)  # a bad size fails before any work
    names = list(dict.fromkeys(args.backend or available_backends(device)))
    if args.driver is None:
        tracker = ProceduralTracker(loop=True)
    else:
        with VideoFileSource(args.driver) as probe:
            width, height = probe.width, probe.height
        tracker = LiveTracker(width, height, data=load_face_model_data())
    summaries, periods = {}, {}
    try:
        if args.driver is not None:
            warm_up_tracker(tracker, args.driver)
        for name in names:
            backend = create_backend(name, avatar, device=device)
            if backend.name in summaries:
                continue  # 'auto' picked one already measured
            summaries[backend.name], periods[backend.name] = measure(
                avatar, backend, raster, args.size, tracker, args.driver, args.frames, args.warmup, args.overlap,
                args.duration, args.period)
            del backend
            if device == "cuda":
                torch.cuda.empty_cache()
    finally:
        tracker.close()

    overlap = device == "cuda" if args.overlap is None else args.overlap
    results = {name: {**s.to_json_dict(), "overlap": overlap} for name, s in summaries.items()}
    for name, logged in periods.items():
        if logged is not None:
            results[name].update(minutes=logged, soak=soak_summary(logged))
    if "torch" in results and "onnxruntime" in results:
        results["onnxruntime"]["speedup_vs_torch"] = speedup(results["torch"], results["onnxruntime"])
    document = {"device": describe_device(device), "backends": results}
    write_text(args.json, json.dumps(document, indent=2, allow_nan=False) + "\n")

    print(f"{document['device']}; output {args.size} px wide, raster {raster}, "
          f"{'tracking overlapped with rendering' if overlap else 'sequential'}, "
          f"driver {args.driver or 'procedural (no tracking)'}, "
          f"{f'{args.duration:g} s' if args.duration else f'{args.frames} timed frames'} per backend")
    print(format_table(results))
    for name, entry in results.items():
        if entry.get("soak"):
            print(f"{name} over {entry['soak']['periods']} periods of {args.period:g} s: {format_soak(entry['soak'])}")
    if "speedup_vs_torch" in results.get("onnxruntime", {}):
        s = results["onnxruntime"]["speedup_vs_torch"]
        print(f"onnxruntime vs torch eager: generator + SR {_times(s['generate_sr_p50'])}, "
              f"end-to-end p50 {_times(s['end_to_end_p50'])}, throughput {_times(s['fps'])}")
    if args.plot:
        plot_latency(summaries, args.plot, title=f"splatcam bench ({document['device']})")
        print(f"wrote {args.json} and {args.plot}")
    else:
        print(f"wrote {args.json}")
    return 0


def format_soak(soak: dict) -> str:
    memory = (f"resident memory {soak['rss_first_mb']:.0f} -> {soak['rss_last_mb']:.0f} MB "
              f"({soak['rss_growth_pct']:+.2f} %)" if "rss_growth_pct" in soak else "resident memory not measured")
    return (f"{memory}; end-to-end p99 {soak['p99_first_ms']:.1f} -> {soak['p99_last_ms']:.1f} ms "
            f"({soak['p99_drift_pct']:+.1f} %, first vs last {soak['window_periods']} periods)")


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if math.isfinite(ratio) else "n/a"
