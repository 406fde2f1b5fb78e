"""A sink sending frames to a virtual camera (pyvirtualcam) that video-call apps can select.

On Linux the virtual camera is a v4l2loopback device; when none exists the error says exactly
how to install and load the kernel module.
"""
from __future__ import annotations

import sys

import numpy as np

from capture.devices import list_video_devices
from runtime.sinks.base import Sink, SinkUnavailable, check_rgb

MODPROBE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="splatcam"'
INSTALL = "sudo apt install v4l2loopback-dkms"
LINUX_BACKEND = "v4l2loopback"


def loopback_help(reason: str) -> str:
    return (f"no virtual camera: {reason}. Load the v4l2loopback kernel module with: {MODPROBE} "
            f"(if it is not installed: {INSTALL}, then run the modprobe line again)")


class VirtualCameraSink(Sink):
    """RGB frames of a fixed size to a virtual camera at a nominal `fps`.

    `pace=True` sleeps after each frame until the next one is due (pyvirtualcam's adaptive
    `sleep_until_next_frame`); a live loop that is already paced by its webcam leaves it off.
    `device` picks one camera (/dev/videoN on Linux); `backend` a registered pyvirtualcam backend.
    """

    def __init__(self, width: int, height: int, fps: float, *, device: str | None = None,
                 backend: str | None = None, pace: bool = False) -> None:
        import pyvirtualcam

        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError(f"virtual camera needs a positive size and rate, got {width}x{height} at {fps} fps")
        if backend is not None and backend not in pyvirtualcam.camera.BACKENDS:
            known = ", ".join(sorted(pyvirtualcam.camera.BACKENDS)) or "none"
            raise ValueError(f"unknown virtual camera backend {backend!r} (available: {known})")
        self.width, self.height, self.fps, self.pace = width, height, fps, pace
        try:
            self._camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                               device=device, backend=backend)
        except RuntimeError as e:
            raise SinkUnavailable(self._explain(e, device, backend)) from None

    @staticmethod
    def _explain(error: RuntimeError, device: str | None, backend: str | None) -> str:
        detail = " ".join(str(error).split())
        if sys.platform.startswith("linux") and backend in (None, LINUX_BACKEND):
            loopbacks = [d.path for d in list_video_devices() if d.loopback]
            if not loopbacks:
                return loopback_help("no v4l2loopback device exists")
            if device is not None and device not in loopbacks:
                return loopback_help(f"{device} is not a v4l2loopback device (those here: {', '.join(loopbacks)})")
        return f"cannot open the virtual camera: {detail}"

    @property
    def device(self) -> str:
        return self._camera.device

    @property
    def frames_sent(self) -> int:
        return self._camera.frames_sent

    def send(self, rgb: np.ndarray) -> None:
        self._camera.send(check_rgb(rgb, self.width, self.height))
        if self.pace:
            self._camera.sleep_until_next_frame()

    def close(self) -> None:
        self._camera.close()
