"""`splatcam bench-raster`: how fast the Gaussian rasterizer backends run on a head-sized scene.

    splatcam bench-raster [--json OUT.json] [--gaussians 20000] [--channels 32]
                          [--resolutions 128,256] [--repeats 20]

The scene stands in for a real avatar: Gaussians spread over (and just under) the surface of
an ellipsoid head about 1 unit tall, scales 0.01-0.02, seen by Camera.looking_at_origin (4
units away, 20° field of view), rendered over a white background. For each resolution it
reports the median and 90th percentile over the repeats (after warm-up) of the forward pass
(no autograd) and of forward + backward (gradients for means, quats, scales, opacities and
features). The CPU backend uses torch's thread count; gsplat runs too when CUDA and gsplat are
available. The C++ extension is compiled before anything is timed.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

GRAD_NAMES = ("means", "quats", "scales", "opacities", "features")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench-raster", help="benchmark the Gaussian rasterizer backends",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=None, help="also write the numbers as JSON to this file")
    p.add_argument("--gaussians", type=int, default=20000, help="number of Gaussians (default 20000)")
    p.add_argument("--channels", type=int, default=32, help="feature channels (default 32)")
    p.add_argument("--resolutions", default="128,256", help="square image sizes, comma-separated (default 128,256)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per measurement (default 20)")
    p.set_defaults(func=run)


def _percentiles(times_s: list[float]) -> dict:
    ordered = sorted(times_s)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return {"median": round(1000 * ordered[len(ordered) // 2], 2), "p90": round(1000 * p90, 2)}


def _time(fn, repeats: int, sync) -> dict:
    for _ in range(3):  # warm-up: allocator, caches, CUDA kernels
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return _percentiles(times)


def measure(backend: str, scene: dict, repeats: int) -> dict:
    """Forward and forward+backward timings (ms) of one backend on one scene."""
    import torch

    from avatar.raster import rasterize

    device = "cuda" if backend == "gsplat" else "cpu"
    scene = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in scene.items()}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            rasterize(**scene, backend=backend)

    weights = torch.rand(scene["height"], scene["width"], scene["features"].shape[1],
                         generator=torch.Generator().manual_seed(1)).to(device)

    def forward_backward():
        leaves = {k: scene[k].detach().requires_grad_() for k in GRAD_NAMES}
        out = rasterize(**{**scene, **leaves}, backend=backend)
        ((out.image * weights).sum() + out.alpha.sum() + out.depth.sum()).backward()

    return {"forward_ms": _time(forward, repeats, sync), "forward_backward_ms": _time(forward_backward, repeats, sync)}


def device_description() -> str:
    """CPU model and core count, plus the GPU when there is one."""
    import os

    import torch

    from runtime.benchmarks import cpu_model

    text = f"{cpu_model()}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        text += f"; {torch.cuda.get_device_name()}"
    return text


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from avatar.raster.cpu import build_extension
    from avatar.raster.gsplat_backend import gsplat_ready
    from runtime.benchmarks import head_like_scene

    if args.gaussians < 1 or args.channels < 1 or args.repeats < 1:
        raise ValueError("--gaussians, --channels and --repeats must be positive")
    try:
        resolutions = [int(r) for r in args.resolutions.split(",")]
    except ValueError:
        raise ValueError(f"--resolutions must be comma-separated integers, got {args.resolutions!r}") from None
    if any(r < 16 or r > 4096 for r in resolutions):
        raise ValueError(f"--resolutions must lie in 16..4096, got {args.resolutions}")

    build_extension()
    gsplat_missing = gsplat_ready()
    backends = ["cpu"] + ([] if gsplat_missing else ["gsplat"])
    jobs = [(b, r) for r in resolutions for b in backends]
    results = []
    for backend, res in tqdm(jobs, desc="bench-raster", unit="config"):
        scene = head_like_scene(args.gaussians, args.channels, res)
        results.append({"backend": backend, "resolution": res, **measure(backend, scene, args.repeats)})

    report = {
        "device": device_description(),
        "torch_threads": torch.get_num_threads(),
        "gaussians": args.gaussians,
        "channels": args.channels,
        "repeats": args.repeats,
        "gsplat": "measured" if not gsplat_missing else f"skipped: {gsplat_missing}",
        "results": results,
    }
    print(f"{report['device']}; torch threads {report['torch_threads']}")
    print(f"{args.gaussians} Gaussians, {args.channels} channels; ms, median (p90) of {args.repeats}")
    print(f"{'backend':8} {'size':>9} {'forward':>17} {'forward+backward':>19}")
    for r in results:
        fwd, both = r["forward_ms"], r["forward_backward_ms"]
        size = f"{r['resolution']}x{r['resolution']}"
        print(f"{r['backend']:8} {size:>9} {fwd['median']:>8.2f} ({fwd['p90']:>6.2f}) "
              f"{both['median']:>10.2f} ({both['p90']:>6.2f})")
    if gsplat_missing:
        print(f"gsplat not measured: {gsplat_missing}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
