"""Video -> per-frame coefficients with MediaPipe's blendshapes (`splatcam track --tracker blendshapes`).

One pass: every frame through the Face Landmarker (tracking/blendshapes.py), which gives the 53
ICT expression weights (mapped from ARKit scores) and the head pose directly, with no model fit
and no identity (the params file's identity is zeros). Then the same temporal handling as the
fitting tracker (tracking/tracker.py): One Euro smoothing on the frame timestamps; a frame without
a face is flagged invalid and holds the last good smoothed value; after a gap longer than
`reacquire_after_s` the smoothing restarts so nothing is interpolated across it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tracking.blendshapes import BlendshapeFrame, FaceLandmarkerTracker
from tracking.driving_frame import DrivingFrame
from tracking.landmarks.base import MEDIAPIPE_478
from tracking.params import N_IDENTITY
from tracking.params_file import ParamsSequence
from tracking.pinhole import PinholeCamera
from tracking.smoothing import CoefficientSmoother
from tracking.tracker import Detections, TrackConfig, TrackResult, stack_frames
from tracking.video_frames import VideoFrames, open_video


@dataclass
class BlendshapeTrackResult:
    params: ParamsSequence  # smoothed (or raw when smoothing is off), missing frames held
    raw: list[BlendshapeFrame | None]  # the Face Landmarker's own per-frame output
    detections: Detections  # its 478 landmarks per frame and the per-frame time (landmark_ms)
    camera: PinholeCamera  # the camera the translations are expressed for
    rejected: int = 0  # kept for the report's format: the Face Landmarker has no fit to reject

    def missing_report(self) -> str:
        """One line: how many frames had no face, and which (same wording as the fitting tracker)."""
        return TrackResult.missing_report(self)  # it only reads .params and .rejected


class BlendshapeStepper:
    """Smoothing and hold-on-miss for a stream of Face Landmarker results."""

    def __init__(self, config: TrackConfig) -> None:
        self.config = config
        self.smoother = CoefficientSmoother(config.smoothing)
        self._held: DrivingFrame | None = None
        self._last_time = -np.inf

    def step(self, found: BlendshapeFrame | None, timestamp: float) -> DrivingFrame | None:
        """What to drive with at this frame (held on a miss; None before the first face)."""
        if found is None:
            return self._held
        if timestamp - self._last_time > self.config.reacquire_after_s:
            self.smoother.reset()
        self._last_time = timestamp
        frame = DrivingFrame(found.expression, found.rotation, found.translation)
        self._held = self.smoother(frame, timestamp) if self.config.smooth else frame
        return self._held


def track_video_blendshapes(video: str | Path | VideoFrames, config: TrackConfig = TrackConfig(),
                            progress: Callable[[Iterator], Iterator] | None = None,
                            tracker: FaceLandmarkerTracker | None = None) -> BlendshapeTrackResult:
    """Track a video file (or a clip of one) with the Face Landmarker; Ctrl+C keeps what was done."""
    video = video if isinstance(video, VideoFrames) else open_video(video)
    own_tracker = tracker is None
    tracker = FaceLandmarkerTracker(config.fit.fov_deg, max_side=config.max_side) if own_tracker else tracker
    stepper = BlendshapeStepper(config)
    raw: list[BlendshapeFrame | None] = []
    held: list[DrivingFrame | None] = []
    stamps, times = [], []
    frames = video.frames()
    if progress is not None:
        frames = progress(frames)
    interrupted = False
    try:
        for frame in frames:
            start = time.perf_counter()
            found = tracker.process(frame.rgb, int(round(frame.source_time * 1000)))
            held.append(stepper.step(found, frame.source_time))
            times.append(1000 * (time.perf_counter() - start))
            raw.append(found)
            stamps.append(frame.source_time)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if own_tracker:
            tracker.close()
    count = min(len(held), len(raw), len(stamps))  # an interrupt may land between the appends
    raw, stamps, times = raw[:count], stamps[:count], times[:count]
    detections = Detections([None if r is None else r.points for r in raw], np.array(stamps, np.float64),
                            video.fps, video.width, video.height, np.array(times), MEDIAPIPE_478,
                            interrupted)
    valid = np.array([r is not None for r in raw], bool)
    params = stack_frames(held, valid, np.zeros(N_IDENTITY, np.float32), video.fps)
    camera = PinholeCamera(video.width, video.height, config.fit.fov_deg)
    return BlendshapeTrackResult(params, raw, detections, camera)
