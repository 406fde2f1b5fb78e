"""The blendshape tracker: ARKit -> ICT mapping, the model bundle's checksum, the head-pose
convention, semantics on real frames, and `splatcam track --tracker blendshapes` end to end."""
from __future__ import annotations

import re
import shutil

import cv2
import numpy as np
import pytest
import torch

from core.paths import file_checksum
from runtime.cli import main
from runtime.video_writer import VideoWriter
from tracking.blendshapes import (
    FACE_LANDMARKER_SHA256, ICT_ORIGIN_IN_MEDIAPIPE_CM, MEDIAPIPE_BLENDSHAPE_NAMES, MEDIAPIPE_TO_ICT,
    POSE_ANCHOR_IN_MEDIAPIPE_CM, BlendshapeMapping, FaceLandmarkerTracker, ModelChecksumError, check_model,
    download_model, face_landmarker_model, head_pose_from_matrix, mediapipe_focal)
from tracking.correspondence import read_canonical_mesh
from tracking.face_model import FaceModel, load_face_model_data
from tracking.landmarks.ibug68 import MEDIAPIPE_TO_IBUG68
from tracking.params import EXPRESSION_NAMES, expression_index
from tracking.params_file import read_params
from tracking.pinhole import PinholeCamera
from tracking.video_frames import open_video

GL_TO_CV = np.diag([1.0, -1.0, -1.0])


def test_mapping_covers_every_name_once():
    assert len(MEDIAPIPE_BLENDSHAPE_NAMES) == 52
    assert set(MEDIAPIPE_TO_ICT) == set(MEDIAPIPE_BLENDSHAPE_NAMES) - {"_neutral"}
    targets = [n for names in MEDIAPIPE_TO_ICT.values() for n in names]
    assert sorted(targets) == sorted(EXPRESSION_NAMES)  # every ICT name exactly once
    assert MEDIAPIPE_TO_ICT["eyeBlinkLeft"] == ("eyeBlink_L",)
    assert MEDIAPIPE_TO_ICT["mouthSmileRight"] == ("mouthSmile_R",)
    assert MEDIAPIPE_TO_ICT["jawLeft"] == ("jawLeft",)
    assert MEDIAPIPE_TO_ICT["cheekPuff"] == ("cheekPuff_L", "cheekPuff_R")


def test_mapping_follows_names_not_positions():
    rng = np.random.default_rng(1)
    order = list(rng.permutation(MEDIAPIPE_BLENDSHAPE_NAMES))
    scores = rng.uniform(0, 1, len(order)).astype(np.float32)
    by_name = dict(zip(order, scores))
    expected = np.zeros(len(EXPRESSION_NAMES), np.float32)
    for ict in EXPRESSION_NAMES:  # independently: strip the ICT suffix back to the ARKit name
        stem = re.sub(r"_L$", "Left", re.sub(r"_R$", "Right", ict))
        expected[expression_index(ict)] = by_name.get(stem, by_name.get(ict[:-2]))
    np.testing.assert_array_equal(BlendshapeMapping(order)(scores), expected)
    with pytest.raises(ValueError, match="jawOpen"):
        BlendshapeMapping([n for n in order if n != "jawOpen"])


def test_checksum_accepts_the_release_and_rejects_a_corrupted_copy(shared_data, tmp_path):
    good = shared_data / "mediapipe" / "face_landmarker.task"
    assert file_checksum(good) == FACE_LANDMARKER_SHA256
    assert check_model(good) == good
    bad = tmp_path / "face_landmarker.task"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError, match="sha256") as e:
        check_model(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ModelChecksumError):
        FaceLandmarkerTracker(60.0, model_path=bad)


def test_download_is_checked_before_it_lands(shared_data, tmp_path):
    good = shared_data / "mediapipe" / "face_landmarker.task"
    corrupt = tmp_path / "corrupt.task"
    corrupt.write_bytes(good.read_bytes()[:-10])
    cache = tmp_path / "cache"
    with pytest.raises(ModelChecksumError):
        download_model(corrupt.as_uri(), cache)
    assert list(cache.iterdir()) == []  # neither the file nor a partial one
    assert file_checksum(download_model(good.as_uri(), cache)) == FACE_LANDMARKER_SHA256
    with pytest.raises(FileNotFoundError, match="put the file in"):
        download_model((tmp_path / "nowhere.task").as_uri(), tmp_path / "other")


def _mediapipe_canonical(shared_data):
    """MediaPipe's canonical mesh in landmark order, and its pose-fitting weights (pbtxt)."""
    path = shared_data / "mediapipe" / "geometry_pipeline_metadata_landmarks.pbtxt"
    basis = np.array(re.findall(r"landmark_id:\s*(\d+)\s+weight:\s*([-0-9.eE+]+)", path.read_text()), float)
    return read_canonical_mesh(path).astype(np.float64), basis[:, 0].astype(int), basis[:, 1]


def test_alignment_constants_match_the_shared_models(shared_data):
    vertices, ids, weights = _mediapipe_canonical(shared_data)
    anchor = (weights[:, None] * vertices[ids]).sum(0) / weights.sum()
    np.testing.assert_allclose(POSE_ANCHOR_IN_MEDIAPIPE_CM, anchor, atol=0.01)
    # ICT's origin: translation-only alignment of eye corners and nose (the rigid part of the face).
    with np.load(shared_data / "ict_face_model.npz") as d:
        ict = d["neutral"][d["landmarks68"]].astype(float)
    rigid = [27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45]
    mp = vertices[np.asarray(MEDIAPIPE_TO_IBUG68)[rigid]]
    np.testing.assert_allclose(ICT_ORIGIN_IN_MEDIAPIPE_CM, (mp - ict[rigid]).mean(0), atol=0.05)


def test_head_pose_matches_the_transform_it_comes_from():
    """Random MediaPipe transforms, applied to random ICT points by the definitions (module doc)."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        r_mp = cv2.Rodrigues(rng.normal(0, 0.6, 3))[0]
        t_mp = np.r_[rng.uniform(-8, 8, 2), rng.uniform(-80, -20)]
        p_ict = rng.normal(0, 8, (30, 3))
        gl = (p_ict + ICT_ORIGIN_IN_MEDIAPIPE_CM) @ r_mp.T + t_mp
        expected = 0.04 * gl @ GL_TO_CV.T  # OpenCV camera, canonical units
        rotation, translation = head_pose_from_matrix(np.block([[r_mp, t_mp[:, None]], [0, 0, 0, 1]]))
        canonical = torch.as_tensor(0.04 * p_ict @ GL_TO_CV.T, dtype=torch.float32)[None]
        ours = FaceModel.posed(canonical, torch.as_tensor(rotation)[None], torch.as_tensor(translation)[None])[0]
        np.testing.assert_allclose(ours.numpy(), expected, atol=2e-4)


def test_head_pose_for_another_focal_length_keeps_the_face_in_place():
    rng = np.random.default_rng(3)
    r_mp = cv2.Rodrigues(rng.normal(0, 0.3, 3))[0]
    t_mp = np.array([3.0, -2.0, -35.0])
    camera = PinholeCamera(640, 480, 50.0)
    f_mp = mediapipe_focal(480)
    rotation, translation = head_pose_from_matrix(np.block([[r_mp, t_mp[:, None]], [0, 0, 0, 1]]),
                                                  camera.focal / f_mp)
    anchor_gl = r_mp @ POSE_ANCHOR_IN_MEDIAPIPE_CM + t_mp
    mp_pixel = np.array([320 + f_mp * anchor_gl[0] / -anchor_gl[2], 240 - f_mp * anchor_gl[1] / -anchor_gl[2]])
    anchor_canonical = 0.04 * GL_TO_CV @ (POSE_ANCHOR_IN_MEDIAPIPE_CM - ICT_ORIGIN_IN_MEDIAPIPE_CM)
    ours = cv2.Rodrigues(rotation.astype(np.float64))[0] @ anchor_canonical + translation
    np.testing.assert_allclose(camera.project(ours), mp_pixel, atol=1e-3)
    assert ours[2] == pytest.approx(0.04 * -anchor_gl[2] * camera.focal / f_mp, rel=1e-5)


def _track(tracker, video, start, count):
    return [tracker.process(f.rgb, round(f.source_time * 1000)) for f in video.clip(start, count).frames()]


def test_jaw_open_on_open_and_closed_mouths(shared_data):
    """Frames picked by looking: d18 0-7 and d12 0-4 closed, d18 76-83 and d12 120-127 wide open."""
    jaw = expression_index("jawOpen")
    for name, closed, opened in (("d18", (0, 8), (76, 8)), ("d12", (0, 5), (120, 8))):
        video = open_video(shared_data / "video" / f"{name}.mp4")
        with FaceLandmarkerTracker(60.0) as tracker:
            shut = _track(tracker, video, *closed)
            wide = _track(tracker, video, *opened)
        assert all(r is not None for r in shut + wide)
        gap = np.median([r.expression[jaw] for r in wide]) - np.median([r.expression[jaw] for r in shut])
        assert gap >= 0.4, f"{name}: jawOpen only {gap:.2f} higher with the mouth open"


def _eye_opening(points, upper, lower, corner_a, corner_b):
    return np.linalg.norm(points[upper] - points[lower]) / np.linalg.norm(points[corner_a] - points[corner_b])


def test_blink_sides_are_the_subjects_own(shared_data):
    """d14 96: the subject's right eye (image left) is half shut; d14 388: the left one is."""
    video = open_video(shared_data / "video" / "d14.mp4")
    with FaceLandmarkerTracker(60.0) as tracker:
        frames = {96: _track(tracker, video, 92, 5)[-1], 388: _track(tracker, video, 384, 5)[-1]}
    for r in frames.values():
        right_open = _eye_opening(r.points, 159, 145, 33, 133)  # image-left eye
        left_open = _eye_opening(r.points, 386, 374, 362, 263)
        blink_l, blink_r = r.expression[expression_index("eyeBlink_L")], r.expression[expression_index("eyeBlink_R")]
        assert (blink_r > blink_l) == (right_open < left_open)
        assert abs(blink_r - blink_l) > 0.05


def test_head_pose_on_real_turns(shared_data):
    """d3 22 faces image left, d3 265 image right (looked at); the ICT head reprojects onto the face."""
    data = load_face_model_data()
    model = FaceModel.from_data(data, data.landmarks68)
    video = open_video(shared_data / "video" / "d3.mp4")
    rigid = [27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45]
    for fov in (45.0, 80.0):
        with FaceLandmarkerTracker(fov) as tracker:
            results = {22: _track(tracker, video, 20, 3)[-1], 265: _track(tracker, video, 263, 3)[-1]}
        camera = PinholeCamera(video.width, video.height, fov)
        for index, r in results.items():
            facing = cv2.Rodrigues(r.rotation.astype(np.float64))[0] @ np.array([0.0, 0.0, -1.0])
            nose_offset = r.points[1, 0] - (r.points[234, 0] + r.points[454, 0]) / 2
            assert np.sign(facing[0]) == np.sign(nose_offset) == (1 if index == 265 else -1)
            assert abs(np.degrees(r.rotation[1])) > 8  # a yaw about the camera's (vertical) y axis
            assert 0.5 < r.translation[2] < 5  # in front of the camera, 12 cm to 1.25 m
            with torch.no_grad():
                v = model.vertices(torch.zeros(1, 100), torch.as_tensor(r.expression)[None])
                v = FaceModel.posed(v, torch.as_tensor(r.rotation)[None], torch.as_tensor(r.translation)[None])
            projected = camera.project(v[0].numpy())
            observed = r.points[np.asarray(MEDIAPIPE_TO_IBUG68)]
            eye_distance = np.linalg.norm(observed[36] - observed[45])
            error = np.linalg.norm(projected[rigid] - observed[rigid], axis=1).mean() / eye_distance
            assert error < 0.1, f"frame {index}, fov {fov}: rigid points off by {error:.1%} of the eye distance"


@pytest.fixture(scope="module")
def face_gap_video(shared_data, tmp_path_factory):
    """d18 frames 70-81 with frames 4-6 blanked (no face)."""
    path = tmp_path_factory.mktemp("bs") / "gap.mp4"
    video = open_video(shared_data / "video" / "d18.mp4").clip(70, 12)
    with VideoWriter(path, video.fps, video.width, video.height) as w:
        for i, f in enumerate(video.frames()):
            w.write(np.zeros_like(f.rgb) if 4 <= i <= 6 else f.rgb)
    return path


def test_track_command_with_blendshapes(face_gap_video, tmp_path, capsys):
    out, overlay = tmp_path / "p.npz", tmp_path / "o.mp4"
    assert main(["track", str(face_gap_video), "--out", str(out), "--overlay", str(overlay),
                 "--tracker", "blendshapes"]) == 0
    assert "no face in 3 of 12 frames: frames 4-6" in capsys.readouterr().out
    p = read_params(out)
    assert p.num_frames == 12 and list(np.flatnonzero(~p.valid)) == [4, 5, 6]
    assert not p.identity.any()
    for i in (4, 5, 6):  # held at the last good frame
        np.testing.assert_array_equal(p.expression[i], p.expression[3])
        np.testing.assert_array_equal(p.rotation[i], p.rotation[3])
    assert p.expression[:, expression_index("jawOpen")][p.valid].min() > 0.4  # d18 70-81: mouth open
    assert (p.translation[:, 2] > 0).all()
    assert overlay.is_file()


def test_an_explicit_model_path_is_never_replaced_by_a_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="no face_landmarker.task there"):
        face_landmarker_model(tmp_path / "missing.task")


def test_a_corrupted_model_stops_track_with_one_line(tmp_path, capsys, monkeypatch, shared_data):
    video = tmp_path / "v.mp4"
    with VideoWriter(video, 25, 64, 64) as w:
        w.write(np.zeros((64, 64, 3), np.uint8))
    bad = tmp_path / "assets" / "mediapipe"
    bad.mkdir(parents=True)
    shutil.copy(shared_data / "mediapipe" / "face_landmarker.task", bad)
    with open(bad / "face_landmarker.task", "r+b") as f:
        f.write(b"garbage")
    monkeypatch.setenv("SPLATCAM_ASSETS", str(tmp_path / "assets"))
    assert main(["track", str(video), "--out", str(tmp_path / "p.npz"), "--tracker", "blendshapes"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sha256" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p.npz").exists()
