import json

import cv2
import numpy as np
import pytest
import torch

from avatar.dataset import (crop_intrinsics, crop_square, heldout_mask, load_dataset, pose_to_world, prepare_multiview,
                            prepare_video, stable_crop)
from avatar.video_frame import frame_rectangle, rectangle_coverage
from core.rotations import axis_angle_to_matrix, matrix_to_axis_angle


def _project(K, p):
    uv = p @ K.T
    return uv[:, :2] / uv[:, 2:]


def test_crop_intrinsics_match_cropping_the_projected_points():
    rng = np.random.default_rng(0)
    K = np.float32([[500, 0, 320], [0, 500, 240], [0, 0, 1]])
    p = rng.uniform([-0.3, -0.3, 1.5], [0.3, 0.3, 2.5], (20, 3))
    crop, size = (100, 50, 300), 128
    expected = (_project(K, p) - [100, 50]) * size / 300
    assert np.allclose(_project(crop_intrinsics(K, crop, size), p), expected, atol=1e-3)


def test_crop_square_pads_outside_the_frame():
    img = np.arange(5 * 6, dtype=np.uint8).reshape(5, 6)
    out = crop_square(img, (-2, 3, 4), fill=255)
    assert out.shape == (4, 4)
    assert (out[:, :2] == 255).all() and (out[2:] == 255).all()
    assert (out[:2, 2:] == img[3:5, 0:2]).all()


def test_the_frame_window_is_each_pixels_share_inside_the_video():
    """The analytic window against the padding made the way `prepare` makes it: a frame of ones
    cropped (crop_square) and shrunk by OpenCV's area resampling."""
    rng = np.random.default_rng(4)
    for _ in range(6):
        width, height = (int(v) for v in rng.integers(40, 120, 2))
        side = int(rng.integers(50, 160))
        size = int(rng.integers(16, min(side, 48)))  # the crop is shrunk, as for any video above `size`
        crop = (int(rng.integers(-side // 2, width - side // 2)),
                int(rng.integers(-side // 2, height - side // 2)), side)
        window = rectangle_coverage(frame_rectangle(crop, (width, height), size), size, size)
        padded = crop_square(np.ones((height, width), np.float32), crop, 0.0)
        reference = cv2.resize(padded, (size, size), interpolation=cv2.INTER_AREA)
        assert window.shape == (size, size) and window.dtype == np.float32
        assert np.abs(window - reference).max() < 2e-3


def test_stable_crop_contains_every_frames_face():
    rng = np.random.default_rng(1)
    base = rng.uniform(200, 300, (68, 2))
    pts = np.stack([base + rng.normal(0, 8, 2) for _ in range(30)])
    x0, y0, side = stable_crop(pts, 640, 480)
    assert (pts[..., 0] >= x0).all() and (pts[..., 0] < x0 + side).all()
    assert (pts[..., 1] >= y0).all() and (pts[..., 1] < y0 + side).all()


def test_heldout_is_the_last_fraction():
    m = heldout_mask(20, 0.1)
    assert m.tolist() == [False] * 18 + [True] * 2
    assert not heldout_mask(20, 0.0).any()
    with pytest.raises(ValueError):
        heldout_mask(20, 1.0)


def test_pose_to_world_then_viewmat_gives_the_camera_pose():
    rng = np.random.default_rng(2)
    rot, trans = rng.normal(0, 0.3, (4, 3)).astype(np.float32), rng.normal(0, 1, (4, 3)).astype(np.float32)
    V = np.eye(4, dtype=np.float32)
    V[:3, :3] = axis_angle_to_matrix(torch.tensor([0.1, -0.4, 0.2])).numpy()
    V[:3, 3] = [0.3, -0.1, 0.5]
    rw, tw = pose_to_world(rot, trans, V)
    x = rng.normal(0, 0.2, (10, 3))
    for i in range(4):
        R = axis_angle_to_matrix(torch.tensor(rot[i], dtype=torch.float64)).numpy()
        Rw = axis_angle_to_matrix(torch.tensor(rw[i], dtype=torch.float64)).numpy()
        world = x @ Rw.T + tw[i]
        cam = world @ V[:3, :3].T + V[:3, 3]
        assert np.allclose(cam, x @ R.T + trans[i], atol=1e-5)


def test_load_dataset_rejects_non_datasets(tmp_path):
    with pytest.raises(ValueError, match="not a splatcam dataset"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError):
        load_dataset(tmp_path)


def test_prepare_a_few_frames_of_a_real_video(shared_data, tmp_path):
    out = tmp_path / "ds"
    report = prepare_video(shared_data / "video" / "d0.mp4", out, size=64, holdout=0.25, max_frames=8,
                           refine_pose=True)
    ds = load_dataset(out)
    assert report.frames + report.dropped == 8 and ds.frames.count == report.frames
    assert ds.heldout_indices.tolist() == list(range(report.frames - 2, report.frames))
    img, mask = ds.load_image(0), ds.load_mask(0)
    assert img.shape == (64, 64, 3) and mask.shape == (64, 64)
    assert ds.meta["source_size"] == [512, 512] and ds.frame_window(64) is None  # the crop fits in the frame
    # Background is white where the mask is empty; the tracked landmarks project inside the face.
    assert img[mask < 10].mean() > 240
    f = ds.frames
    R = axis_angle_to_matrix(torch.tensor(f.rotation[0])).numpy()
    uv = _project(f.K[0], f.landmarks3d[0] @ R.T + f.translation[0])
    assert (uv > 0).all() and (uv < 64).all()
    inside = mask[uv[:, 1].astype(int), uv[:, 0].astype(int)]
    assert (inside > 128).mean() > 0.9
    # The photometric pass ran and made the skin's colours agree better across frames.
    refinement = ds.meta["pose_refinement"]
    assert refinement["rms_after"] < refinement["rms_before"]
    # Without it the landmark poses stay; the refinement corrects them by degrees, not more.
    prepare_video(shared_data / "video" / "d0.mp4", tmp_path / "plain", size=64, holdout=0.25, max_frames=8,
                  refine_pose=False)
    plain = load_dataset(tmp_path / "plain")
    assert plain.meta["pose_refinement"] is None
    relative = axis_angle_to_matrix(torch.tensor(f.rotation)) @ axis_angle_to_matrix(
        torch.tensor(plain.frames.rotation)).transpose(1, 2)
    turn = np.degrees(matrix_to_axis_angle(relative).norm(dim=1).numpy())
    assert 0 < turn.max() < 5, turn
    # No half-written outputs on failure: a bad holdout fails before anything is written.
    with pytest.raises(ValueError):
        prepare_video(shared_data / "video" / "d0.mp4", tmp_path / "bad", holdout=1.5, max_frames=2)
    assert not (tmp_path / "bad").exists()


def test_a_crop_past_the_videos_frame_records_where_the_frame_is(shared_data, tmp_path):
    # d6 is a close-up: its head crop reaches past the 480 x 480 frame, and the neck ends at the
    # video's bottom edge.
    prepare_video(shared_data / "video" / "d6.mp4", tmp_path / "ds", size=64, holdout=0.25, max_frames=4,
                  refine_pose=False)
    ds = load_dataset(tmp_path / "ds")
    assert ds.meta["source_size"] == [480, 480]
    window = ds.frame_window(64)
    assert window is not None and window.shape == (64, 64) and window.max() == 1.0 and window.min() == 0.0
    for i in range(ds.frames.count):  # past the frame every sample is the white padding, unmasked
        assert (ds.load_image(i)[window == 0] == 255).all() and (ds.load_mask(i)[window == 0] == 0).all()


def test_prepare_multiview_folder(shared_data, tmp_path):
    views = tmp_path / "views"
    views.mkdir()
    video = shared_data / "video" / "d0.mp4"
    (views / "cam0.mp4").symlink_to(video)
    (views / "cam1.mp4").symlink_to(video)  # same pixels, a different stated pose: checks the bookkeeping
    K = [[600.0, 0, 256], [0, 600.0, 256], [0, 0, 1]]
    V1 = np.eye(4)
    V1[:3, 3] = [0.2, 0.0, 0.1]
    (views / "calibration.json").write_text(json.dumps({"reference": "cam0", "cameras": {
        "cam0": {"K": K, "viewmat": np.eye(4).tolist(), "width": 512, "height": 512},
        "cam1": {"K": K, "viewmat": V1.tolist(), "width": 512, "height": 512}}}))
    report = prepare_multiview(views, tmp_path / "ds", size=32, holdout=0.25, max_frames=4)
    ds = load_dataset(tmp_path / "ds")
    n = report.frames // 2
    assert ds.frames.count == 2 * n and ds.frames.camera.tolist() == [0] * n + [1] * n
    assert np.allclose(ds.frames.viewmat[1], V1)
    assert ds.frames.heldout.sum() == 2 * int(np.ceil(0.25 * n))


def test_prepare_a_video_without_a_face_fails_cleanly(shared_data, tmp_path):
    from runtime.video_writer import VideoWriter

    video = tmp_path / "empty.mp4"
    with VideoWriter(video, 25, 64, 64) as w:
        for i in range(4):
            w.write(np.full((64, 64, 3), 40 * i, np.uint8))
    with pytest.raises(ValueError, match="no frame with a usable face"):
        prepare_video(video, tmp_path / "ds", size=32)
    assert not (tmp_path / "ds").exists()
