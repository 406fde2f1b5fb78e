"""Hush the C++ start-up chatter of MediaPipe / TensorFlow Lite (XNNPACK delegate notices,
"feedback manager" warnings) that it writes straight to file descriptor 2, bypassing Python.

Callers wrap the graph's construction in `quiet_native_stderr` and its first frames with a face
(HUSHED_FACE_FRAMES, counted by `FirstFacesHush`), where that chatter happens: MediaPipe's worker
threads print it while the landmark model first runs, sometimes a little after the call that
started it returned, hence a few frames and not one. A real failure there still raises a Python
exception. `SPLATCAM_VERBOSE=1` shows everything.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

HUSHED_FACE_FRAMES = 5


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    if os.environ.get("SPLATCAM_VERBOSE"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters, some test runners)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FirstFacesHush:
    """Hushes a tracker's calls until it has seen HUSHED_FACE_FRAMES frames with a face."""

    def __init__(self) -> None:
        self._faces = 0

    def around_call(self) -> contextlib.AbstractContextManager:
        return quiet_native_stderr() if self._faces < HUSHED_FACE_FRAMES else contextlib.nullcontext()

    def saw_face(self, face: bool) -> None:
        self._faces += bool(face)
