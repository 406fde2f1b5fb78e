"""Tracker acceptance on the real videos of ../shared/data/video (issue "Tracking").

Every video is tracked on its first two seconds (a fixed rule; the full-length numbers are in
BENCHMARKS.md, Tracking, from `splatcam bench-track VIDEO --reference dlib`) and must show:
- accuracy against a different detector: the fitted model's 68 landmarks land within
  MAX_DLIB_ERROR_IOD of dlib's 68 points (median over the 51 inside the face outline, which both
  detectors define alike), skipped where dlib is not installed;
- a fit that reaches its own target: the residual to MediaPipe's 68 points, which the fit
  minimises, is below MAX_RESIDUAL_IOD (median);
- little jitter: on the fixed one-second windows of tracking/track_metrics.py the head rotation
  deviates from constant angular velocity by less than MAX_JITTER_DEG RMS (median).

Semantics, on frames picked by looking at them (frame indices from 0):
- d18 (man opening his mouth wide): open 72, 80, 88, 125, 135, 145, 150; closed 10, 40, 60, 100,
  108, 160, 175, 200.
- d12 (man with glasses, very wide mouth): open 122, 126, 172, 180; closed 0, 100, 144.
- d14 (woman blinking): both eyes closed in 16-20, 51-52, 66 and 94 (blink weight 0.8 or more);
  half closed at 79 (a squint while looking sideways, so neither "closed" nor "open" is asserted
  there); open elsewhere (under 0.45: the blink weight follows the lid gap, tracking/eye_opening.py,
  and a lid that hangs lower between blinks reads up to about 0.35).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from tracking.params import expression_index
from tracking.track_metrics import landmark_errors, window_jitter
from tracking.tracker import detect_video, track_video
from tracking.video_frames import open_video

MAX_RESIDUAL_IOD = 0.025
MAX_DLIB_ERROR_IOD = 0.05
MAX_JITTER_DEG = 0.6
CLIP_SECONDS = 2.0
VIDEOS = sorted(p.stem for p in (SHARED_DATA / "video").glob("*.mp4"))


def video_path(shared_data, name):
    return shared_data / "video" / f"{name}.mp4"


def test_there_are_31_videos(shared_data):
    assert len(VIDEOS) == 31


@pytest.fixture(scope="module")
def first_seconds(shared_data):
    """name -> (clip, TrackResult) of the video's first CLIP_SECONDS, tracked once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            video = open_video(video_path(shared_data, name))
            clip = video.clip(0, int(round(CLIP_SECONDS * video.fps)))
            cache[name] = clip, track_video(clip)
        return cache[name]
    return get


@pytest.mark.parametrize("name", VIDEOS)
def test_fit_residual_and_jitter(first_seconds, name):
    clip, result = first_seconds(name)
    assert result.params.valid.all(), result.missing_report()
    residual = np.median(landmark_errors(result.fitted68, result.detections.ibug68()))
    assert residual < MAX_RESIDUAL_IOD, f"median residual {100 * residual:.2f} % IOD"
    jitter = window_jitter(result.params.rotation, result.params.valid, clip.fps)
    assert jitter.acceleration_deg < MAX_JITTER_DEG, f"jitter {jitter.acceleration_deg:.3f} deg"


@pytest.mark.parametrize("name", VIDEOS)
def test_accuracy_against_dlib(first_seconds, dlib_backend, name):
    clip, result = first_seconds(name)
    reference = detect_video(clip, dlib_backend, 640).ibug68()
    assert np.isfinite(reference).all(), "dlib missed a face in the first seconds"
    error = np.median(landmark_errors(result.fitted68, reference)[:, 17:])
    assert error < MAX_DLIB_ERROR_IOD, f"median error against dlib {100 * error:.2f} % IOD"


@pytest.fixture(scope="module")
def tracked(shared_data):
    cache = {}

    def get(name, frames):
        if name not in cache:
            cache[name] = track_video(open_video(video_path(shared_data, name)).clip(0, frames))
        return cache[name].params
    return get


@pytest.mark.parametrize("name, frames, open_, closed", [
    ("d18", 216, [72, 80, 88, 125, 135, 145, 150], [10, 40, 60, 100, 108, 160, 175, 200]),
    ("d12", 183, [122, 126, 172, 180], [0, 100, 144]),
])
def test_jaw_opens_with_the_mouth(tracked, name, frames, open_, closed):
    jaw = tracked(name, frames).expression[:, expression_index("jawOpen")]
    assert jaw[open_].mean() - jaw[closed].mean() >= 0.4, (jaw[open_], jaw[closed])
    assert jaw[open_].min() > jaw[closed].max()


BLINKS = [(16, 20), (51, 52), (66, 66), (94, 94)]  # d14, both eyes closed (inclusive ranges)
HALF_CLOSED = [79]


@pytest.mark.parametrize("channel", ["eyeBlink_L", "eyeBlink_R"])
def test_blinks_peak_at_the_blinks(tracked, channel):
    blink = tracked("d14", 100).expression[:, expression_index(channel)]
    near = np.zeros(len(blink), bool)
    for a, b in BLINKS:
        near[max(0, a - 2): b + 3] = True
        assert blink[a - 1: b + 2].max() >= 0.8, (a, b, blink[a - 1: b + 2])
    for i in HALF_CLOSED:
        near[i - 1: i + 2] = True
    assert blink[~near].max() < 0.45, np.flatnonzero(blink >= 0.45)
