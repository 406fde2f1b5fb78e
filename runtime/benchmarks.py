"""Pieces the benchmarks share (`splatcam bench`, `bench-raster`, `make gpu-check`) and their tests
use: the machine's name, a head-sized Gaussian scene, a tracker warmed up past its identity fit."""
from __future__ import annotations

from pathlib import Path

HEAD_SEMI_AXES = (0.42, 0.55, 0.48)  # x (ear to ear), y (chin to crown), z (nose to back)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def head_like_scene(n: int, channels: int, resolution: int, seed: int = 0) -> dict:
    """Keyword arguments for avatar.raster.rasterize: n Gaussians on an ellipsoid head."""
    import torch

    from avatar.camera import Camera

    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    depth_into_head = 1.0 - 0.08 * torch.rand(n, 1, generator=g)  # a thin shell, like a trained avatar
    means = direction * torch.tensor(HEAD_SEMI_AXES) * depth_into_head
    cam = Camera.looking_at_origin(resolution, resolution, fov_deg=20.0, distance=4.0)
    return {
        "means": means,
        "quats": torch.randn(n, 4, generator=g),
        "scales": 0.01 + 0.01 * torch.rand(n, 3, generator=g),
        "opacities": 0.2 + 0.8 * torch.rand(n, generator=g),
        "features": torch.rand(n, channels, generator=g),
        "viewmat": cam.viewmat,
        "K": cam.K,
        "width": cam.width,
        "height": cam.height,
        "background": torch.ones(channels),
    }


def warm_up_tracker(tracker, driver: str, max_frames: int = 300) -> None:
    """Track the driver's first frames until the identity is fitted (a one-off cost, not a backend's)."""
    from capture.video_file import VideoFileSource

    with VideoFileSource(driver, loop=True) as source:
        for _ in range(max_frames):
            frame = source.read()
            if frame is None:  # a video without frames
                return
            tracker.process(frame.rgb, frame.timestamp)
            if tracker.identity_pending or tracker.identity_ready:
                tracker.wait_for_identity()
                return
