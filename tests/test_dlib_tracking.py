"""The 68-point dlib backend driving the fitter end to end on a real video (d0).

d0 (512x512, 78 frames): the mouth is closed in frames 0-17 and 67-77 and open in 22-65. Both
MediaPipe and dlib measure the inner-lip gap (iBUG 62-66) below 0.01 of the inter-ocular
distance in the closed frames and 0.13-0.23 in the open ones; the margins around the
transitions are left out of both sets.
"""
from __future__ import annotations

import numpy as np

from runtime.cli import main
from tracking.params import expression_index
from tracking.params_file import read_params

CLOSED = list(range(0, 16)) + list(range(69, 78))
OPEN = list(range(24, 64))


def test_track_with_dlib_follows_the_mouth(shared_data, dlib_backend, tmp_path):
    out = tmp_path / "d0.npz"
    assert main(["track", str(shared_data / "video" / "d0.mp4"), "--landmarks", "dlib", "--out", str(out)]) == 0
    params = read_params(out)
    assert params.valid.all()
    jaw = params.expression[:, expression_index("jawOpen")]
    assert jaw[OPEN].min() > jaw[CLOSED].max(), (jaw[OPEN], jaw[CLOSED])
    assert jaw[OPEN].mean() - jaw[CLOSED].mean() >= 0.08


def test_dlib_fit_lands_on_dlib_points(shared_data, dlib_backend):
    from tracking.fit_config import fit_config_for
    from tracking.landmarks.base import IBUG_68
    from tracking.track_metrics import landmark_errors
    from tracking.tracker import TrackConfig, track_video
    from tracking.video_frames import open_video

    result = track_video(open_video(shared_data / "video" / "d0.mp4").clip(0, 30), TrackConfig(landmarks="dlib", fit=fit_config_for(IBUG_68)),
                         backend=dlib_backend)
    assert result.detections.scheme == dlib_backend.scheme
    errors = landmark_errors(result.fitted68, result.detections.ibug68())
    assert np.median(errors) < 0.025, f"median error {100 * np.median(errors):.2f} % IOD"
