"""A pyvirtualcam backend (0.15 interface) that keeps what it receives, for sink and live-loop tests.

A real virtual camera device (v4l2loopback) cannot exist on the CI machines, so the virtual
camera sink is checked against this backend, registered the way pyvirtualcam registers its own
(`pyvirtualcam.register_backend`); the `fake_virtual_camera` fixture in conftest.py does that.
"""
from __future__ import annotations

import time


class FakeVirtualCamera:
    NAME = "splatcam-fake"
    instances: list["FakeVirtualCamera"] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._device = device or "fake0"
        self.frames, self.times, self.closed = [], [], 0
        FakeVirtualCamera.instances.append(self)

    def send(self, frame):
        self.times.append(time.perf_counter())
        self.frames.append(frame.copy())

    def close(self):
        self.closed += 1

    def device(self):
        return self._device

    def native_fourcc(self):
        return self.fourcc
