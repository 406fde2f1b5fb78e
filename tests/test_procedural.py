"""The scripted driver of `splatcam demo` and the plain-frame source that clocks it."""
from __future__ import annotations

import numpy as np
import pytest

from capture.synthetic import SyntheticSource
from tracking.params import expression_index
from tracking.procedural import DURATION_S, SCRIPT, ProceduralTracker, scripted_frame


def series(fps=50.0):
    t = np.arange(0, DURATION_S, 1 / fps)
    frames = [scripted_frame(x, loop=False) for x in t]
    return t, np.stack([f.expression for f in frames]), np.stack([f.rotation for f in frames])


def test_first_second_is_neutral_for_calibration():
    t, e, r = series()
    rest = t < 1.2
    assert np.all(e[rest] == 0) and np.all(r[rest] == 0)


@pytest.mark.parametrize("channel, at_least", [("mouthSmile_L", 0.8), ("eyeBlink_R", 0.99), ("jawOpen", 0.8),
                                               ("mouthPucker", 0.8)])
def test_gestures_reach_their_peaks(channel, at_least):
    _, e, _ = series()
    assert e[:, expression_index(channel)].max() >= at_least


def test_head_turns_and_nods():
    _, _, r = series()
    assert np.abs(r[:, 1]).max() > 0.4 and np.abs(r[:, 0]).max() > 0.2


def test_motion_is_continuous():
    # Smoothstep ramps: at 50 fps no channel jumps by more than the steepest ramp allows
    # (slope 1.5 / ramp per second, times the peak weight).
    _, e, r = series(50.0)
    steepest = max(1.5 / g.ramp for g in SCRIPT) / 50.0
    assert np.abs(np.diff(e, axis=0)).max() <= steepest + 1e-6
    assert np.abs(np.diff(r, axis=0)).max() <= steepest + 1e-6
    assert np.all((e >= 0) & (e <= 1))


def test_tracker_reads_the_script_from_its_first_frame():
    tracker = ProceduralTracker(loop=True)
    first = tracker.process(np.zeros((4, 4, 3), np.uint8), 100.0)
    assert first.valid and np.all(first.frame.expression == 0)
    later = tracker.process(np.zeros((4, 4, 3), np.uint8), 100.0 + 6.4)
    np.testing.assert_array_equal(later.frame.expression, scripted_frame(6.4).expression)
    looped = tracker.process(np.zeros((4, 4, 3), np.uint8), 100.0 + DURATION_S + 6.4)
    np.testing.assert_allclose(looped.frame.expression, later.frame.expression, atol=1e-5)


def test_synthetic_source_counts_and_stamps_frames():
    source = SyntheticSource(32, 24, fps=100.0, count=5, pace=True)
    frames = []
    while (f := source.read()) is not None:
        frames.append(f)
    assert [f.index for f in frames] == list(range(5))
    assert frames[0].rgb.shape == (24, 32, 3)
    assert np.allclose([f.source_time for f in frames], np.arange(5) / 100.0)
    elapsed = frames[-1].timestamp - frames[0].timestamp
    assert 0.03 <= elapsed < 0.5  # paced at 100 fps: four periods apart
    source.close()
    with pytest.raises(ValueError):
        SyntheticSource(0, 24)
