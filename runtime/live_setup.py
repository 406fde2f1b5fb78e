"""Setting up a live session from what the user asked for: the rasterizer, the avatar's renderer,
the sinks (chosen automatically when none was named) and the source. Used by `splatcam live`,
`splatcam demo` and `splatcam bench`."""
from __future__ import annotations

import contextlib
from pathlib import Path

from capture.frame_source import FrameSource
from capture.source import SourceOptions, open_source

DEFAULT_OUT = Path("out") / "live.mp4"


def open_live_source(video: str | None, camera: int | None) -> FrameSource:
    """A video file played at its own rate like a webcam, else webcam `camera` (default 0)."""
    if video is not None:
        return open_source(Path(video), SourceOptions(pace=True))
    return open_source(0 if camera is None else camera)


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
