"""A webcam (OpenCV VideoCapture) as a frame source that survives the device going away.

When a read fails (cable pulled, driver reset) the device is released and reopened with
exponential backoff until frames come again, the source is closed, or `give_up_after_s` passes
without a frame (CaptureError). A webcam that cannot be opened at all raises ValueError listing
the video devices that exist.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import cv2

from capture.devices import describe_devices, list_video_devices
from capture.frame import Frame
from capture.frame_source import CaptureError, FrameSource

DEFAULT_FPS = 30.0  # when the driver does not say
LOG_LEVEL_SILENT = 0  # cv2.utils.logging.LOG_LEVEL_SILENT, which this OpenCV build does not expose


@dataclass(frozen=True)
class ReopenPolicy:
    first_delay_s: float = 0.25
    max_delay_s: float = 2.0
    factor: float = 2.0
    give_up_after_s: float | None = None  # None: keep trying until closed


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV logs a warning per failed open; the backoff loop would repeat them every second."""
    previous = cv2.getLogLevel()
    cv2.setLogLevel(LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.setLogLevel(previous)


class WebcamSource(FrameSource):
    def __init__(self, index: int, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, reopen: ReopenPolicy = ReopenPolicy(),
                 api: int = cv2.CAP_ANY) -> None:
        self.index, self.name = index, f"webcam {index}"
        self._request = (width, height, fps)
        self.policy, self._api = reopen, api
        self._lock = threading.Lock()  # the capture object vs close() from another thread
        self._stop = threading.Event()
        self._cap = self._open_capture()
        if self._cap is None:
            raise ValueError(f"webcam {index}: cannot open it; {describe_devices(list_video_devices())}")
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or DEFAULT_FPS
        self.reopens = 0  # successful reopenings after the device went away
        self._index = 0
        self._failing_since: float | None = None  # first failure since the last good frame
        self._delay = reopen.first_delay_s

    def _open_capture(self) -> cv2.VideoCapture | None:
        with _quiet_opencv():
            cap = cv2.VideoCapture(self.index, self._api)
            if not cap.isOpened():
                cap.release()
                return None
        # A one-frame driver queue: a deeper one only hands out older frames.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        width, height, fps = self._request
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                cap.set(prop, value)
        return cap

    def read(self) -> Frame | None:
        while not self._stop.is_set():
            bgr = None
            with self._lock:
                if self._cap is not None and self._cap.grab():
                    timestamp = time.perf_counter()  # right after grab: closest to exposure
                    ok, bgr = self._cap.retrieve()
                    bgr = bgr if ok else None
            if bgr is not None:
                self._failing_since, self._delay = None, self.policy.first_delay_s
                frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), timestamp, self._index)
                self._index += 1
                return frame
            self._reconnect()
        return None

    def _reconnect(self) -> None:
        """Release the device and reopen it, waiting longer after each failed attempt."""
        if self._failing_since is None:
            self._failing_since = time.perf_counter()
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
        while True:
            give_up = self.policy.give_up_after_s
            if give_up is not None and time.perf_counter() - self._failing_since >= give_up:
                raise CaptureError(f"webcam {self.index} stopped delivering frames and did not come back "
                                   f"within {give_up:g} s; {describe_devices(list_video_devices())}")
            if self._stop.wait(self._delay):
                return
            self._delay = min(self._delay * self.policy.factor, self.policy.max_delay_s)
            with self._lock:
                if self._stop.is_set():
                    return
                self._cap = self._open_capture()
                if self._cap is not None:
                    self.reopens += 1
                    return

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
