"""Video -> per-frame coefficients: landmarks, identity fit, per-frame fit, smoothing.

Offline (`track_video`) runs in two passes so the identity can use the whole video:
1. every frame through the landmark backend (frames larger than `max_side` are downscaled for
   the detector; points are scaled back to the frame's own pixels);
2. the identity fitted jointly on `identity_frames` frames spread evenly over the frames with a
   face, then each frame's pose and expression fitted in order, warm-started from the previous
   frame, its two blink weights matched to the detected lid gap (tracking/eye_opening.py), then
   One Euro smoothing on the frame timestamps.
A frame without a face (or whose fit is implausible) is flagged invalid and holds the last good
smoothed value; after a gap longer than `reacquire_after_s` the fit restarts cold and the
smoothing restarts, so nothing is interpolated across a long gap.

The camera is a pinhole of `fit.fov_deg` (diagonal) centred in the frame (tracking/pinhole.py).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from tracking.driving_frame import DrivingFrame
from tracking.eye_opening import EyeOpeningMatcher
from tracking.face_model import FaceModelData, load_face_model_data
from tracking.fit_config import FitConfig
from tracking.fit_points import FitPoints, build_fit_points, ibug68_fit_points
from tracking.fitter import FaceFitter, FrameFit
from tracking.landmarks.base import IBUG_68, MEDIAPIPE_478, LandmarkBackend
from tracking.landmarks.ibug68 import MEDIAPIPE_TO_IBUG68, to_ibug68
from tracking.params_file import ParamsSequence
from tracking.pinhole import PinholeCamera
from tracking.smoothing import CoefficientSmoother, SmoothingConfig
from tracking.video_frames import VideoFrames, open_video


@dataclass(frozen=True)
class TrackConfig:
    fit: FitConfig = field(default_factory=FitConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    smooth: bool = True
    landmarks: str = "mediapipe"  # landmark backend name (tracking/landmarks/registry.py)
    max_side: int = 640  # frames larger than this are downscaled for the landmark detector
    landmark_weight: float = 4.0  # weight of each of the 68 landmark points (dense points: ~1)
    jaw_contour_weight: float = 1.0  # ... except the 17 on the face outline (tracking/fit_points.py)
    iris_weight: float = 4.0  # weight of each iris centre
    match_eye_opening: bool = True  # re-solve the blink weights against the detected lid gap (tracking/eye_opening.py)
    max_fit_error: float = 0.12  # RMS residual (face sizes) above which a fit is rejected
    reacquire_after_s: float = 0.5  # a longer gap restarts the fit and the smoothing

    def __post_init__(self) -> None:
        if self.max_side < 64:
            raise ValueError(f"max_side must be at least 64, got {self.max_side}")


@dataclass
class Detections:
    """Pass 1: landmarks of every frame in the frame's own pixel coordinates."""

    points: list[np.ndarray | None]  # (P, 2) per frame in `scheme`, None where no face
    timestamps: np.ndarray  # (T,) seconds
    fps: float
    width: int
    height: int
    landmark_ms: np.ndarray  # (T,) detector time per frame (including the downscale)
    scheme: str  # which point is which (tracking/landmarks/base.py)
    interrupted: bool = False

    def ibug68(self) -> np.ndarray:
        """(T, 68, 2) detected iBUG points, NaN where no face (the accuracy metric's reference)."""
        return np.array([to_ibug68(p, self.scheme) for p in self.points], np.float32).reshape(-1, 68, 2)


@dataclass
class TrackResult:
    params: ParamsSequence  # smoothed (or raw when smoothing is off), missing frames held
    raw: list[FrameFit | None]  # the unsmoothed per-frame fits
    fitted68: np.ndarray  # (T, 68, 2) pixels: the raw fit's 68 landmarks projected (NaN if invalid)
    detections: Detections
    camera: PinholeCamera
    fit_ms: np.ndarray  # (T,) per-frame fit + smoothing time (0 where no face)
    identity_ms: float
    rejected: int  # frames with a face whose fit was implausible (counted as missing)

    def missing_report(self) -> str:
        """One line: how many frames had no usable face, and which."""
        missing = np.flatnonzero(~self.params.valid)
        t = self.params.num_frames
        if missing.size == 0:
            return f"face found in all {t} frames"
        ranges = _ranges(missing)
        shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:8])
        more = f" and {len(ranges) - 8} more ranges" if len(ranges) > 8 else ""
        rejected = f" ({self.rejected} with an implausible fit)" if self.rejected else ""
        return f"no face in {missing.size} of {t} frames{rejected}: frames {shown}{more}"


def _ranges(indices: np.ndarray) -> list[tuple[int, int]]:
    breaks = np.flatnonzero(np.diff(indices) > 1)
    starts = np.r_[indices[0], indices[breaks + 1]]
    ends = np.r_[indices[breaks], indices[-1]]
    return list(zip(starts.tolist(), ends.tolist()))


def detect_video(video: VideoFrames, backend: LandmarkBackend, max_side: int,
                 progress: Callable[[Iterator], Iterator] | None = None) -> Detections:
    """Pass 1 over a video. Ctrl+C stops early with what was detected so far (`interrupted`)."""
    points, stamps, times = [], [], []
    frames = video.frames()
    if progress is not None:
        frames = progress(frames)
    interrupted = False
    try:
        for frame in frames:
            start = time.perf_counter()
            points.append(detect_frame(backend, frame.rgb, frame.source_time, max_side))
            times.append(1000 * (time.perf_counter() - start))
            stamps.append(frame.source_time)
    except KeyboardInterrupt:
        interrupted = True
    return Detections(points, np.array(stamps, np.float64), video.fps, video.width, video.height,
                      np.array(times), backend.scheme, interrupted)


def detect_frame(backend: LandmarkBackend, rgb: np.ndarray, timestamp: float, max_side: int) -> np.ndarray | None:
    """Landmarks (P, 2) in `rgb`'s pixels, detected on a copy no larger than max_side."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                                interpolation=cv2.INTER_AREA)
    found = backend.detect(small, int(round(timestamp * 1000)))
    if found is None:
        return None
    sx, sy = w / small.shape[1], h / small.shape[0]
    return (found.points * np.float32([sx, sy])).astype(np.float32)


@dataclass
class FrameResult:
    frame: DrivingFrame | None  # what to drive with: smoothed fit, held on a miss; None before any face
    fit: FrameFit | None  # this frame's own (unsmoothed) fit; None without a usable face
    valid: bool
    rejected: bool = False  # a face was detected but its fit was implausible


class Tracker(Protocol):
    """What the live loop drives: LiveTracker (a face in each camera frame) or ProceduralTracker
    (a scripted performance)."""

    identity_ready: bool  # the driver's identity is fitted (coefficients shift once when it becomes True)

    def process(self, rgb: np.ndarray, timestamp: float) -> FrameResult:
        ...

    def close(self) -> None:
        ...


class FrameStepper:
    """Per-frame fit and smoothing: warm start, hold on a miss, cold restart after a long gap."""

    def __init__(self, fitter: FaceFitter, points: FitPoints, camera: PinholeCamera, config: TrackConfig) -> None:
        self.fitter, self.points, self.camera, self.config = fitter, points, camera, config
        self.smoother = CoefficientSmoother(config.smoothing)
        self.eyes = EyeOpeningMatcher(fitter.canonical_landmarks, camera) if config.match_eye_opening else None
        self.restart()

    def restart(self) -> None:
        """Forget the previous frame: the next fit starts cold and the smoothing starts over."""
        self._previous: FrameFit | None = None
        self._held: DrivingFrame | None = None
        self._last_time = -np.inf
        self.smoother.reset()

    def step(self, detected: np.ndarray | None, timestamp: float) -> FrameResult:
        if detected is None:
            return FrameResult(self._held, None, False)
        if timestamp - self._last_time > self.config.reacquire_after_s:
            self._previous = None
            self.smoother.reset()
        fit = self.fitter.fit_frame(self.points.select(detected), self.camera, self._previous)
        if fit.rms_error > self.config.max_fit_error:
            return FrameResult(self._held, None, False, rejected=True)
        if self.eyes is not None:
            fit = replace(fit, expression=self.eyes.match(self.fitter.identity.numpy(), fit.expression, fit.rotation,
                                                          fit.translation, to_ibug68(detected, self.points.scheme)))
        self._previous, self._last_time = fit, timestamp
        frame = DrivingFrame(fit.expression, fit.rotation, fit.translation)
        self._held = self.smoother(frame, timestamp) if self.config.smooth else frame
        return FrameResult(self._held, fit, True)


class SequenceFitter:
    """Pass 2: identity, then per-frame fit and smoothing, over detected landmarks."""

    def __init__(self, data: FaceModelData, points: FitPoints, config: TrackConfig) -> None:
        self.config = config
        self.points = points
        self.fitter = FaceFitter(data, points.vertex_ids, points.barycentric, points.weights, config.fit)

    def identity_frames(self, detections: Detections) -> list[int]:
        found = [i for i, p in enumerate(detections.points) if p is not None]
        if not found:
            return []
        n = min(self.config.fit.identity_frames, len(found))
        picks = np.linspace(0, len(found) - 1, n).round().astype(int)
        return sorted({found[i] for i in picks})

    def run(self, detections: Detections, camera: PinholeCamera) -> TrackResult:
        count = len(detections.points)
        start = time.perf_counter()
        chosen = self.identity_frames(detections)
        if chosen:
            self.fitter.fit_identity([self.points.select(detections.points[i]) for i in chosen], camera)
        identity_ms = 1000 * (time.perf_counter() - start)

        stepper = FrameStepper(self.fitter, self.points, camera, self.config)
        results: list[FrameResult] = []
        fit_ms = np.zeros(count)
        fitted68 = np.full((count, 68, 2), np.nan, np.float32)
        for i, observed in enumerate(detections.points):
            begin = time.perf_counter()
            results.append(stepper.step(observed, float(detections.timestamps[i])))
            if observed is not None:
                fit_ms[i] = 1000 * (time.perf_counter() - begin)
            if results[-1].valid:
                fitted68[i] = self.fitter.project_landmarks68(results[-1].fit, camera)
        valid = np.array([r.valid for r in results], bool)
        params = stack_frames([r.frame for r in results], valid, self.fitter.identity.numpy(), detections.fps)
        return TrackResult(params, [r.fit for r in results], fitted68, detections, camera, fit_ms, identity_ms,
                           sum(r.rejected for r in results))


class LiveTracker:
    """Frame-by-frame tracking of a live source: detect, fit, smooth, one frame at a time.

    Without the whole video at hand, the identity is fitted once from the first `identity_frames`
    faces seen at least `identity_spacing_s` apart; until then frames are fitted with the average
    identity (all zeros), so driving starts with the first face. The identity solve takes a second
    or more on a CPU, so it runs on a second fitter in a background thread while frames keep
    being tracked; the next frame after it finishes switches to the new identity.
    """

    def __init__(self, width: int, height: int, config: TrackConfig = TrackConfig(),
                 backend: LandmarkBackend | None = None, data: FaceModelData | None = None,
                 identity_spacing_s: float = 0.2) -> None:
        from tracking.landmarks.registry import create_backend

        data = load_face_model_data() if data is None else data
        self.config = config
        self.backend = create_backend(config.landmarks) if backend is None else backend
        self.points = fit_points(data, config, self.backend.scheme)
        self.fitter = FaceFitter(data, self.points.vertex_ids, self.points.barycentric, self.points.weights,
                                 config.fit)
        self.camera = PinholeCamera(width, height, config.fit.fov_deg)
        self.stepper = FrameStepper(self.fitter, self.points, self.camera, config)
        self.identity_spacing_s = identity_spacing_s
        self._data = data
        self._identity_samples: list[np.ndarray] = []
        self._last_sample = -np.inf
        self._identity_thread: threading.Thread | None = None
        self._identity_result: np.ndarray | None = None
        self._identity_error: BaseException | None = None
        self.identity_ready = False

    def process(self, rgb: np.ndarray, timestamp: float) -> FrameResult:
        """Track one RGB frame taken at `timestamp` seconds."""
        self._adopt_identity()
        points = detect_frame(self.backend, rgb, timestamp, self.config.max_side)
        if points is not None and not self.identity_ready and self._identity_thread is None:
            self._collect_identity(points, timestamp)
        return self.stepper.step(points, timestamp)

    @property
    def identity_pending(self) -> bool:
        """An identity fit is running in the background."""
        return self._identity_thread is not None

    def wait_for_identity(self, timeout: float | None = None) -> bool:
        """Block until a started identity fit has finished and been adopted (tests, benchmarks)."""
        if self._identity_thread is not None:
            self._identity_thread.join(timeout)
        self._adopt_identity()
        return self.identity_ready

    def _collect_identity(self, points: np.ndarray, timestamp: float) -> None:
        if timestamp - self._last_sample < self.identity_spacing_s:
            return
        self._identity_samples.append(self.points.select(points))
        self._last_sample = timestamp
        if len(self._identity_samples) >= self.config.fit.identity_frames:
            samples, self._identity_samples = self._identity_samples, []
            self._identity_thread = threading.Thread(target=self._fit_identity, args=(samples,),
                                                     name="splatcam-identity", daemon=True)
            self._identity_thread.start()

    def _fit_identity(self, samples: list[np.ndarray]) -> None:
        try:
            p = self.points
            fitter = FaceFitter(self._data, p.vertex_ids, p.barycentric, p.weights, self.config.fit)
            fitter.fit_identity(samples, self.camera)
            self._identity_result = fitter.identity.numpy().copy()
        except BaseException as e:  # noqa: BLE001 - handed to the tracking thread
            self._identity_error = e

    def _adopt_identity(self) -> None:
        thread = self._identity_thread
        if thread is None or thread.is_alive():
            return
        self._identity_thread = None
        if self._identity_error is not None:
            error, self._identity_error = self._identity_error, None
            raise error
        self.fitter.set_identity(self._identity_result)
        self.identity_ready = True
        self.stepper.restart()  # the shape changed: start the fit and the smoothing afresh

    def close(self) -> None:
        if self._identity_thread is not None:
            self._identity_thread.join()
        self.backend.close()


def stack_frames(frames: list[DrivingFrame | None], valid: np.ndarray, identity: np.ndarray,
              fps: float) -> ParamsSequence:
    """Stack the per-frame values; leading misses take the first good frame, all-missing gives zeros."""
    count = len(frames)
    expression = np.zeros((count, 53), np.float32)
    rotation = np.zeros((count, 3), np.float32)
    translation = np.zeros((count, 3), np.float32)
    first = next((f for f in frames if f is not None), None)
    for i, f in enumerate(frames):
        value = f if f is not None else first
        if value is not None:
            expression[i], rotation[i], translation[i] = value.expression, value.rotation, value.translation
    return ParamsSequence(expression, rotation, translation, identity, valid, fps)


def track_video(video: str | Path | VideoFrames, config: TrackConfig = TrackConfig(),
                backend: LandmarkBackend | None = None, data: FaceModelData | None = None,
                progress: Callable[[Iterator], Iterator] | None = None) -> TrackResult:
    """Both passes over a video file, or a clip of one (see the module docstring)."""
    from tracking.landmarks.registry import create_backend

    video = video if isinstance(video, VideoFrames) else open_video(video)
    data = load_face_model_data() if data is None else data
    own_backend = backend is None
    backend = create_backend(config.landmarks) if own_backend else backend
    try:
        points = fit_points(data, config, backend.scheme)
        detections = detect_video(video, backend, config.max_side, progress)
    finally:
        if own_backend:
            backend.close()
    camera = PinholeCamera(video.width, video.height, config.fit.fov_deg)
    return SequenceFitter(data, points, config).run(detections, camera)


def fit_points(data: FaceModelData, config: TrackConfig, scheme: str) -> FitPoints:
    """The points fitted for a detector's scheme (tracking/fit_points.py): MediaPipe's dense
    correspondence + 68 landmarks + iris centres, or the 68 iBUG points alone."""
    from tracking.correspondence import load_correspondence

    if scheme == IBUG_68:
        return ibug68_fit_points(data, config.landmark_weight, config.jaw_contour_weight)
    if scheme != MEDIAPIPE_478:
        raise ValueError(f"no fit points for landmark scheme {scheme!r}")
    c = load_correspondence()
    return build_fit_points(data, c.mediapipe_ids, c.vertex_ids, c.barycentric, c.weights,
                            np.asarray(MEDIAPIPE_TO_IBUG68), config.landmark_weight, config.jaw_contour_weight,
                            config.iris_weight)
