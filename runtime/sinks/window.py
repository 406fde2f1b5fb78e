"""A preview window (OpenCV) with key controls for the live loop.

Keys: c recalibrates the neutral face, o toggles the tracking overlay, q or Esc quits; closing
the window quits too. The actions are collected for the loop to act on (`poll()`).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np

from runtime.sinks.base import Sink, SinkUnavailable, check_rgb

RECALIBRATE, TOGGLE_OVERLAY, QUIT = "recalibrate", "toggle_overlay", "quit"
ESC = 27
PROBE_TIMEOUT_S = 30.0


def _default_bindings() -> dict[int, str]:
    bindings = {ESC: QUIT}
    for char, action in (("c", RECALIBRATE), ("o", TOGGLE_OVERLAY), ("q", QUIT)):
        bindings[ord(char)] = bindings[ord(char.upper())] = action
    return bindings


@dataclass(frozen=True)
class KeyMap:
    """Key codes (as cv2.waitKey returns them) to action names."""

    bindings: dict[int, str] = field(default_factory=_default_bindings)

    def action(self, key: int) -> str | None:
        """The action bound to `key`, or None (no key pressed is -1)."""
        if key < 0:
            return None
        return self.bindings.get(key & 0xFF)


def require_display() -> None:
    """Raise SinkUnavailable unless OpenCV can open a window here.

    OpenCV's Qt build aborts the whole process when no display can be reached, so a window is
    first tried in a child process where that abort does no harm.
    """
    if sys.platform.startswith(("win", "darwin")):
        return
    if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
        raise SinkUnavailable("no display for the preview window (DISPLAY is not set); "
                              "run it in a desktop session, or use --virtual-camera / --out instead")
    probe = "import cv2; cv2.namedWindow('splatcam-probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SinkUnavailable(f"opening a test window on display {os.environ.get('DISPLAY')!r} "
                              f"hung for {PROBE_TIMEOUT_S:g} s") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[0] if lines else f"exit status {result.returncode}"
        raise SinkUnavailable(f"cannot open a window on display {os.environ.get('DISPLAY')!r} ({reason}); "
                              "use --virtual-camera / --out instead")


class WindowSink(Sink):
    def __init__(self, title: str = "splatcam", keymap: KeyMap = KeyMap()) -> None:
        require_display()
        import cv2

        self._cv2 = cv2
        self.title, self.keymap = title, keymap
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
        self._shown = False
        self._closed = False
        self._pending: list[str] = []

    def _pump(self) -> None:
        """Process window events once and collect the resulting actions."""
        if self._closed:
            return
        action = self.keymap.action(self._cv2.waitKey(1))
        if action is not None:
            self._pending.append(action)
        if self._shown and self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE) < 1:
            self._closed = True
            self._pending.append(QUIT)

    def send(self, rgb: np.ndarray) -> None:
        rgb = check_rgb(rgb)
        if self._closed:
            return
        self._cv2.imshow(self.title, self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2BGR))
        self._shown = True
        self._pump()

    def poll(self) -> list[str]:
        """Actions since the last poll, in order (keys pressed, 'quit' when the window was closed)."""
        self._pump()
        actions, self._pending = self._pending, []
        return actions

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cv2.destroyWindow(self.title)
            self._cv2.waitKey(1)
