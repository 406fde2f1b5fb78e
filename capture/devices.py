"""Listing the video devices of a Linux machine (/dev/video*) without holding them open.

Each device node is opened non-blocking for a single VIDIOC_QUERYCAP ioctl and closed again,
which tells a camera (video capture) from metadata nodes and from v4l2loopback outputs.
"""
from __future__ import annotations

import os
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

# struct v4l2_capability: driver[16] card[32] bus_info[32] version capabilities device_caps reserved[3]
_CAPABILITY = struct.Struct("=16s32s32sIII3I")
VIDIOC_QUERYCAP = (2 << 30) | (_CAPABILITY.size << 16) | (ord("V") << 8) | 0  # _IOR('V', 0, ...)
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_OUTPUT = 0x00000002
CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
CAP_DEVICE_CAPS = 0x80000000  # device_caps is filled in (kernels since 3.3)
LOOPBACK_DRIVER = "v4l2 loopback"


@dataclass(frozen=True)
class Capability:
    driver: str
    card: str
    caps: int  # the node's own capabilities (device_caps when the driver reports them)

    @property
    def can_capture(self) -> bool:
        return bool(self.caps & (CAP_VIDEO_CAPTURE | CAP_VIDEO_CAPTURE_MPLANE))


@dataclass(frozen=True)
class VideoDevice:
    path: str  # /dev/videoN
    index: int  # N, the number OpenCV's VideoCapture(N) opens
    name: str  # the card name, as sysfs or the driver reports it
    loopback: bool  # a v4l2loopback node (a virtual camera), not a physical one
    can_capture: bool | None  # None where the node could not be queried (permissions)

    def describe(self) -> str:
        kind = "virtual camera (v4l2loopback)" if self.loopback else {
            True: "camera", False: "not a capture node", None: "not queryable"}[self.can_capture]
        return f"{self.path} {self.name!r}: {kind}"


def _c_string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_capability(data: bytes) -> Capability:
    driver, card, _bus, _version, caps, device_caps, *_ = _CAPABILITY.unpack(data[: _CAPABILITY.size])
    return Capability(_c_string(driver), _c_string(card), device_caps if caps & CAP_DEVICE_CAPS else caps)


def query_capability(path: str) -> Capability | None:
    """VIDIOC_QUERYCAP on a device node, or None where it cannot be opened or is no V4L2 node."""
    import fcntl  # POSIX only; this module's callers reach it on Linux alone

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        buffer = bytearray(_CAPABILITY.size)
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, buffer)
        return parse_capability(bytes(buffer))
    except OSError:
        return None
    finally:
        os.close(fd)


def list_video_devices(dev_dir: str = "/dev", sysfs_dir: str = "/sys/class/video4linux") -> list[VideoDevice]:
    """Every /dev/videoN in number order; empty on systems without V4L2 (macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return []
    devices = []
    nodes = [(int(m.group(1)), p) for p in Path(dev_dir).glob("video*")
             if (m := re.fullmatch(r"video(\d+)", p.name))]
    for index, node in sorted(nodes):
        sysfs = Path(sysfs_dir) / node.name
        name_file = sysfs / "name"
        name = name_file.read_text().strip() if name_file.is_file() else ""
        capability = query_capability(str(node))
        # v4l2loopback devices live under /sys/devices/virtual/, physical ones under a bus.
        virtual = sysfs.exists() and "/virtual/" in os.path.realpath(sysfs)
        loopback = virtual or (capability is not None and capability.driver == LOOPBACK_DRIVER)
        devices.append(VideoDevice(str(node), index, name or (capability.card if capability else ""),
                                   loopback, capability.can_capture if capability else None))
    return devices


def describe_devices(devices: list[VideoDevice]) -> str:
    """One line listing the devices, for error messages."""
    if not sys.platform.startswith("linux"):
        return "device listing is only available on Linux"
    if not devices:
        return "no video devices found (/dev/video* is empty: is a camera plugged in and its driver loaded?)"
    return "video devices here: " + "; ".join(d.describe() for d in devices)
