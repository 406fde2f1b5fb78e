"""The two halves of one live frame: driving (tracked face -> avatar coefficients) and rendering.

`LiveDriver` turns the tracker's per-frame result into the avatar's (expression, pose):
relative retargeting (tracking/retarget.py) onto the avatar's neutral, and a graceful face loss.
The tracker already smooths expression, rotation and translation separately, channel by
channel (tracking/smoothing.py), so opening the mouth cannot leak into the head's scale through
a shared filter; the avatar's translation is anchored the way `splatcam render` anchors it: the
driver's calibrated neutral position lands on the avatar's `anchor_translation` (the mean head
position of its training frames), so the head moves as the driver's does but stays framed the
way the avatar was trained, whatever the webcam's distance. Depth is held at the anchor unless
`follow_depth`: a monocular fit trades a wide-open mouth for the head coming closer (with the
tracker on d12 / d18 the fitted depth falls 2.8 % / 1.5 % between closed and open mouth, its
correlation with jawOpen -0.56 / -0.75), which would make the avatar pump in scale; a call
avatar that keeps its framing when the user leans in loses nothing.

Face lost: the last output is held for `hold_s` (a hand passing in front of the face should not
make the avatar go blank-faced), then eased to the avatar's neutral over `ease_s` with a
smoothstep (expression and translation interpolated, rotation along the geodesic). When the
face comes back after easing began, the output blends from where it was into the tracked face
over `recover_s` instead of jumping.

`AvatarRenderer` runs generator -> rasterizer -> SR CNN (avatar/render_pipeline.py) through an
inference backend (runtime/inference) and hands back RGB uint8, each stage timed.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from avatar.camera import Camera
from avatar.checkpoint import Avatar
from avatar.gaussians import GaussianSet
from avatar.render_pipeline import NO_TIMING, STAGES, RenderPipeline, to_uint8
from avatar.video_frame import cut_to_frame
from core.rotations import slerp
from runtime.inference.base import InferenceBackend
from tracking.driving_frame import DrivingFrame
from tracking.params import N_EXPRESSION
from tracking.retarget import Retargeter
from tracking.tracker import FrameResult

GPU_STAGES = STAGES  # timed with CUDA events on a GPU


def smoothstep(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return s * s * (3.0 - 2.0 * s)


def interpolate(a: DrivingFrame, b: DrivingFrame, t: float) -> DrivingFrame:
    """(1 - t) a + t b; rotations along the geodesic (slerp)."""
    return DrivingFrame(expression=(1 - t) * a.expression + t * b.expression,
                        rotation=slerp(a.rotation, b.rotation, t),
                        translation=(1 - t) * a.translation + t * b.translation)


def avatar_neutral(avatar: Avatar) -> DrivingFrame:
    """The avatar's resting face: zero expression, facing its camera (rotation 0), at its anchor."""
    return DrivingFrame(expression=np.zeros(N_EXPRESSION, np.float32), rotation=np.zeros(3, np.float32),
                        translation=avatar.anchor_translation.detach().cpu().numpy().astype(np.float32))


class LiveDriver:
    """Tracker results -> the avatar's coefficients, frame by frame (see the module docstring)."""

    def __init__(self, neutral: DrivingFrame, calibration_s: float = 1.0, hold_s: float = 0.5,
                 ease_s: float = 1.0, recover_s: float = 0.2, follow_depth: bool = False) -> None:
        self.neutral = neutral
        self.follow_depth = follow_depth
        self.retargeter = Retargeter(neutral, calibration_s)
        self.hold_s, self.ease_s, self.recover_s = hold_s, ease_s, recover_s
        self._last: DrivingFrame | None = None  # the last output
        self._lost_since: float | None = None
        self._lost_from: DrivingFrame | None = None  # output when the face was lost
        self._recover_since: float | None = None
        self._recover_from: DrivingFrame | None = None

    @classmethod
    def from_config(cls, neutral: DrivingFrame, config) -> "LiveDriver":
        """With the timings and depth choice of a runtime.live_config.LiveConfig."""
        return cls(neutral, config.calibration_s, config.hold_s, config.ease_s, config.recover_s,
                   config.follow_depth)

    def recalibrate(self) -> None:
        """Measure the driver's neutral again over the next `calibration_s` of tracking."""
        self.retargeter.recalibrate()

    @property
    def calibrated(self) -> bool:
        return self.retargeter.calibrator.complete

    def lost_weight(self, lost_for: float) -> float:
        """How much of the held face remains `lost_for` seconds after the face was lost (1 -> 0)."""
        return 1.0 - smoothstep((lost_for - self.hold_s) / self.ease_s)

    def __call__(self, result: FrameResult, timestamp: float) -> DrivingFrame:
        if result.valid:
            out = self.retargeter(result.frame, timestamp)
            if not self.follow_depth:
                out = DrivingFrame(out.expression, out.rotation,
                                   np.r_[out.translation[:2], self.neutral.translation[2]])
            if self._lost_since is not None:
                if timestamp - self._lost_since > self.hold_s and self._last is not None:
                    self._recover_since, self._recover_from = timestamp, self._last
                self._lost_since = self._lost_from = None
            if self._recover_since is not None:
                s = smoothstep((timestamp - self._recover_since) / self.recover_s)
                out = interpolate(self._recover_from, out, s)
                if s >= 1.0:
                    self._recover_since = self._recover_from = None
        elif self._last is None:
            out = self.neutral  # no face seen yet
        else:
            if self._lost_since is None:
                self._lost_since, self._lost_from = timestamp, self._last
                self._recover_since = self._recover_from = None
            w = self.lost_weight(timestamp - self._lost_since)
            out = self._lost_from if w >= 1.0 else interpolate(self.neutral, self._lost_from, w)
        self._last = out
        return out


def resolve_avatar_dir(spec: str) -> Path:
    """An avatar directory from `--avatar`: a path, or "demo" for the built-in mannequin."""
    if spec != "demo":
        return Path(spec)
    from avatar.demo_avatar import ensure_demo_avatar  # the shipped mannequin (no face model needed)
    return ensure_demo_avatar()


def output_camera(camera: Camera, size: int | None, sr_factor: int) -> Camera:
    """The avatar's render camera rescaled so the SR output (`sr_factor` x the render) is `size`
    pixels wide (None: as trained)."""
    if size is None:
        return camera
    if size < sr_factor or size % sr_factor:
        raise ValueError(f"output size must be a positive multiple of {sr_factor}, got {size}")
    factor = size / (sr_factor * camera.width)
    return camera.scaled(factor) if factor != 1.0 else camera


class AvatarRenderer:
    """(expression, pose) -> RGB uint8 through an inference backend and a rasterizer, by the one
    render path (avatar/render_pipeline.py), at the output size asked for.

    On CUDA everything runs on the renderer's own stream, so a worker thread rendering frame t
    does not serialise with whatever the main thread enqueues while it tracks frame t+1.
    """

    def __init__(self, avatar: Avatar, backend: InferenceBackend, raster: str = "cpu", size: int | None = None) -> None:
        self.backend = backend
        self.pipeline = RenderPipeline(backend, raster)
        self.device = torch.device(backend.device)
        self.camera = output_camera(avatar.camera, size, avatar.sr.factor).to(self.device)
        self.width, self.height = avatar.sr.factor * self.camera.width, avatar.sr.factor * self.camera.height
        window = avatar.frame_window(self.width)
        self.window = None if window is None else window.to(self.device)
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        if raster == "cpu":
            from avatar.raster.cpu import build_extension

            # Compiled on first use (~15 s from an empty cache): here, not in the first live
            # frame, while the camera runs on and a short scripted demo would be over.
            build_extension()

    def render(self, drive: DrivingFrame, timing=NO_TIMING) -> np.ndarray:
        return self.finish(self.generate(drive, timing), timing)

    def generate(self, drive: DrivingFrame, timing=NO_TIMING) -> GaussianSet:
        """The generator alone (the live loop's split overlap runs it beside the tracker)."""
        with self._on_stream():
            expression = torch.from_numpy(drive.expression).to(self.device, non_blocking=True)
            pose = torch.from_numpy(np.concatenate([drive.rotation, drive.translation]).astype(np.float32))
            pose = pose.to(self.device, non_blocking=True)
            return self.pipeline.generate(expression, pose, timing)

    def finish(self, gaussians: GaussianSet, timing=NO_TIMING) -> np.ndarray:
        """Rasterize and upsample generated Gaussians into RGB uint8 on the host."""
        with self._on_stream():
            rendered = self.pipeline.rasterize_and_upsample(gaussians, self.camera, timing)
            rgb = cut_to_frame(rendered.rgb, self.window, 1.0)  # framed as the training video was
            return to_uint8(rgb)  # the host copy waits for the stream; sinks take host arrays

    @contextlib.contextmanager
    def _on_stream(self):
        if self.stream is not None:
            # Side streams do not wait for the default stream by themselves: order this work after
            # what is already queued there (the camera made in __init__, the backend's weights and
            # warm-up), as PyTorch's CUDA-semantics notes ask of non-default streams.
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
        stream = torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()
        with torch.inference_mode(), stream:
            yield
