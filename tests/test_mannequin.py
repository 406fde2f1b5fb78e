"""The demo mannequin reproduces the ICT 3DMM (issue 5 acceptance) and is an ordinary avatar.

The reference geometry is computed here independently of avatar/mannequin.py's target code: the
full ICT mesh from tracking.face_model.FaceModel (identity 0), each Gaussian's point by its
triangle and barycentric coordinates, the eyeballs turned with scipy's Euler rotations, then
the head pose by cv2.Rodrigues. Head size = bounding-box diagonal of the mean head's vertices
(avatar.mannequin.head_size, ~1.9 canonical units = 48 cm including the neck).
"""
import json
import math
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatar.checkpoint import load_avatar, save_avatar
import avatar.demo_avatar as demo_module
from avatar.deformation_fit import random_expressions
from avatar.demo_avatar import SHIPPED_DIR, demo_avatar_problem, ensure_demo_avatar
from avatar.mannequin import (CLASSES, GAZE_PITCH_DEG, GAZE_YAW_DEG, MANNEQUIN_VERSION, MannequinSpec,
                              build_mannequin, head_size, initial_model, mannequin_camera, mannequin_config,
                              random_poses, sample_surface)
from avatar.raster import render_gaussians
from avatar.super_resolution import SR_FACTOR
from tracking.face_model import FaceModel, load_face_model_data
from tracking.params import N_EXPRESSION, N_IDENTITY, expression_index


@pytest.fixture(scope="module")
def setup(demo_avatar):
    data = load_face_model_data()
    avatar = load_avatar(demo_avatar)
    surface = sample_surface(data, MannequinSpec())
    return data, avatar, surface


def reference_points(data, surface, expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Each Gaussian's surface point on the posed ICT mesh, eyeballs turned by the gaze weights."""
    model = FaceModel.from_data(data)
    verts = model.vertices(torch.zeros(1, N_IDENTITY), torch.as_tensor(expression[None], dtype=torch.float32))[0]
    verts = verts.double().numpy()
    pts = (surface.barycentric[:, :, None] * verts[surface.triangles]).sum(1)
    w = {name: expression[expression_index(name)] for name in
         ("eyeLookOut_L", "eyeLookIn_L", "eyeLookUp_L", "eyeLookDown_L",
          "eyeLookOut_R", "eyeLookIn_R", "eyeLookUp_R", "eyeLookDown_R")}
    for side, toward_left, up in ((0, w["eyeLookOut_L"] - w["eyeLookIn_L"], w["eyeLookUp_L"] - w["eyeLookDown_L"]),
                                  (1, w["eyeLookIn_R"] - w["eyeLookOut_R"], w["eyeLookUp_R"] - w["eyeLookDown_R"])):
        yaw, pitch = math.radians(GAZE_YAW_DEG) * toward_left, math.radians(GAZE_PITCH_DEG) * up
        R = Rotation.from_euler("YX", [-yaw, -pitch]).as_matrix()
        mask, c = surface.eye_mask[side], surface.eye_centers[side].astype(np.float64)
        pts[mask] = (pts[mask] - c) @ R.T + c
    R = cv2.Rodrigues(pose[:3].astype(np.float64))[0]
    return pts @ R.T + pose[3:]


def test_neutral_gaussians_sit_on_the_mean_head(setup):
    data, avatar, surface = setup
    model = avatar.model
    assert model.num_gaussians == len(surface.points)
    # The saved positions are the deterministic samples (same seed, same face model).
    np.testing.assert_allclose(model.positions.detach().numpy(), surface.points, atol=1e-6)
    np.testing.assert_allclose(model.landmarks.numpy(), data.neutral[data.landmarks68], atol=1e-6)
    regions = {data.region_names[i] for i in np.unique(surface.region)}
    assert {"face", "head_neck", "mouth_socket", "eyeball_left", "eyeball_right"} <= regions
    with torch.no_grad():
        g = model(torch.zeros(N_EXPRESSION), torch.zeros(6))
    err = np.linalg.norm(g.means.numpy() - reference_points(data, surface, np.zeros(N_EXPRESSION), np.zeros(6)), axis=1)
    assert err.mean() < 0.002 * head_size(data), err.mean()
    # Colour channels: RGB in [0, 1]; the one-hot material channels pick one class per Gaussian.
    rgb = g.features[:, :3].numpy()
    assert rgb.min() >= 0 and rgb.max() <= 1
    onehot = g.features[:, 3:3 + len(CLASSES)].numpy()
    assert (onehot.max(1) > 0.9).all() and (np.sort(onehot, 1)[:, -2] < 0.1).all()


# Measured on the shipped avatar (BENCHMARKS.md "Demo avatar"): mean error 0.077 % of head size,
# relative error on moving points 0.160. The limits leave room for a rebuild on another CPU, whose
# centres may differ from the shipped ones by 0.1 % of head size on average (REBUILD_MEANS_HEAD_FRACTION):
# 0.077 + 0.1 < 0.2 %, and 0.1 % of head size is ~6 % of the mean motion of moving points: 0.16 + 0.06 < 0.25.
MAX_MEAN_ERROR = 0.002  # of head size
MAX_RELATIVE_ERROR = 0.25  # of the 3DMM's motion, on points it moves by more than 1 % of head size


def test_mannequin_reproduces_the_3dmm(setup):
    """Mean Gaussian-to-mesh error under random expressions and poses below MAX_MEAN_ERROR."""
    data, avatar, surface = setup
    gen = torch.Generator().manual_seed(2024)  # not the build's seed
    expressions = random_expressions(12, gen).numpy()
    rng = np.random.default_rng(7)
    size = head_size(data)
    errors, motion = [], []
    rest = reference_points(data, surface, np.zeros(N_EXPRESSION), np.zeros(6))
    for e in expressions:
        pose = np.r_[rng.uniform(-0.3, 0.3, 3), avatar.anchor_translation.numpy() + rng.uniform(-0.05, 0.05, 3)]
        with torch.no_grad():
            means = avatar.model(torch.as_tensor(e), torch.as_tensor(pose, dtype=torch.float32)).means.numpy()
        errors.append(np.linalg.norm(means - reference_points(data, surface, e, pose), axis=1))
        motion.append(np.linalg.norm(reference_points(data, surface, e, np.zeros(6)) - rest, axis=1))
    errors, motion = np.array(errors), np.array(motion)
    mean_error = errors.mean() / size
    print(f"mannequin mean vertex error: {100 * mean_error:.3f} % of head size ({errors.mean():.4f} units)")
    assert mean_error < MAX_MEAN_ERROR
    # Stricter: where the 3DMM moves a point by more than 1 % of head size, the Gaussian
    # follows: its error is well below the motion itself (a still avatar would score 1.0).
    moving = motion > 0.01 * size
    relative = errors[moving].sum() / motion[moving].sum()
    print(f"moving points: mean motion {motion[moving].mean():.4f}, relative error {relative:.3f}")
    assert relative < MAX_RELATIVE_ERROR


def test_gaze_and_jaw_move_the_right_way(setup):
    """Semantics in canonical axes (face looks along -z, +y down): eyeLookOut_L turns the left
    pupil towards +x, eyeLookUp lifts the pupils (-y), jawOpen lowers the chin (+y); the
    Gaussians follow a good part of the reference motion."""
    data, avatar, surface = setup
    pupil = avatar.model.features[:, 3 + CLASSES.index("pupil")].detach().numpy() > 0
    left_pupil = pupil & surface.eye_mask[0]
    chin = np.argmin(np.linalg.norm(surface.points - data.neutral[data.landmarks68[8]], axis=1))
    assert left_pupil.sum() > 3

    def moved(axis, mask, **weights):
        e = np.zeros(N_EXPRESSION, np.float32)
        for k, v in weights.items():
            e[expression_index(k)] = v
        with torch.no_grad():
            ours = avatar.model.canonical_gaussians(torch.as_tensor(e), torch.zeros(6)).means.numpy()
        reference = reference_points(data, surface, e, np.zeros(6))
        rest = reference_points(data, surface, np.zeros(N_EXPRESSION), np.zeros(6))
        return (ours[mask, axis] - rest[mask, axis]).mean(), (reference[mask, axis] - rest[mask, axis]).mean()

    for (ours, reference), sign in ((moved(0, left_pupil, eyeLookOut_L=1.0), 1),
                                    (moved(1, pupil, eyeLookUp_L=1.0, eyeLookUp_R=1.0), -1),
                                    (moved(1, [chin], jawOpen=1.0), 1)):
        print(f"moved {ours:+.4f}, reference {reference:+.4f}")
        assert sign * reference > 0.015
        assert sign * ours > 0.25 * sign * reference


def test_render_frames_the_head_and_the_mouth_opens(setup):
    data, avatar, surface = setup
    cam = avatar.camera
    background = torch.ones(avatar.config.color_channels)
    pose = torch.cat([torch.zeros(3), avatar.anchor_translation])
    frames = {}
    for name, weight in (("neutral", 0.0), ("jawOpen", 1.0)):
        e = torch.zeros(N_EXPRESSION)
        e[expression_index("jawOpen")] = weight
        with torch.no_grad():
            r = render_gaussians(avatar.model(e, pose), cam, background)
            frames[name] = avatar.sr(r.image.permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
        if name == "neutral":
            alpha = r.alpha[..., 0].numpy()
            assert alpha[cam.height // 2, cam.width // 2] > 0.9  # the face fills the centre
            assert alpha[0, 0] < 0.05 and alpha[0, -1] < 0.05  # background in the top corners
    assert frames["neutral"].shape == (SR_FACTOR * cam.height, SR_FACTOR * cam.width, 3)
    # Mouth box: around the projected neutral mouth landmarks, in output pixels.
    lmk = avatar.model.landmarks[48:68] + avatar.anchor_translation
    uv = (lmk @ cam.K.T)[:, :2] / lmk[:, 2:] * SR_FACTOR
    (u0, v0), (u1, v1) = uv.min(0).values.int().tolist(), uv.max(0).values.int().tolist()
    box = (slice(v0 - 4, v1 + 24), slice(u0 - 4, u1 + 4))
    change = np.abs(frames["neutral"][box] - frames["jawOpen"][box]).mean()
    forehead = (slice(v0 - 110, v0 - 80), box[1])
    still = np.abs(frames["neutral"][forehead] - frames["jawOpen"][forehead]).mean()
    assert change > 0.02 and change > 5 * still, (change, still)


def test_checkpoint_round_trip_and_staleness(setup, demo_avatar, tmp_path):
    data, avatar, _ = setup
    meta = json.loads((demo_avatar / "avatar.json").read_text())
    assert meta["training"]["mannequin_version"] == MANNEQUIN_VERSION
    assert meta["face_model_checksum"] == data.checksum
    assert demo_avatar_problem(demo_avatar) is None

    copy = save_avatar(avatar, tmp_path / "copy")
    again = load_avatar(copy)
    e = random_expressions(1, torch.Generator().manual_seed(3))[0]
    pose = torch.cat([torch.tensor([0.1, -0.2, 0.05]), avatar.anchor_translation])
    with torch.no_grad():
        a, b = avatar.model(e, pose), again.model(e, pose)
        feats = torch.rand(1, avatar.config.color_channels, 8, 8)
        np.testing.assert_array_equal(avatar.sr(feats).numpy(), again.sr(feats).numpy())
    for name in ("means", "quats", "scales", "opacities", "features"):
        np.testing.assert_array_equal(getattr(a, name).numpy(), getattr(b, name).numpy())
    np.testing.assert_array_equal(again.anchor_translation.numpy(), avatar.anchor_translation.numpy())
    np.testing.assert_array_equal(again.camera.K.numpy(), avatar.camera.K.numpy())

    # A demo avatar of another mannequin version is stale.
    stale = tmp_path / "stale"
    shutil.copytree(demo_avatar, stale)
    meta["training"]["mannequin_version"] = MANNEQUIN_VERSION - 1
    (stale / "avatar.json").write_text(json.dumps(meta))
    assert "version" in demo_avatar_problem(stale)
    assert "not built" in demo_avatar_problem(tmp_path / "nothing")


def test_demo_is_the_shipped_avatar_and_needs_no_face_model(monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("the shipped demo avatar is current: nothing should be built")

    monkeypatch.setattr(demo_module, "build_mannequin", no_build)
    assert ensure_demo_avatar(progress=False) == SHIPPED_DIR
    assert demo_avatar_problem(SHIPPED_DIR) is None


def test_make_demo_avatar_command_keeps_a_current_avatar(demo_avatar, tmp_path, capsys):
    from runtime.cli import main

    out = tmp_path / "demo"
    shutil.copytree(demo_avatar, out)
    stamp = (out / "avatar.safetensors").stat().st_mtime_ns
    assert main(["make-demo-avatar", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert (out / "avatar.safetensors").stat().st_mtime_ns == stamp


# A rebuild of the shipped demo avatar, compared with tolerances: across CPUs and thread counts
# float reductions round differently, so a rebuild is not bit-identical to the shipped files.
# The full build takes 2-6 minutes on two cores (BENCHMARKS.md), too long for every run, so the
# suite rebuilds the deterministic stages only: surface samples, disc shapes, colours and
# material codes, the closed-form MLPs, camera and anchor (no optimisation: agreement to float32
# rounding). The two fitted parts, f_def^exp and the SR CNN, are held to the 3DMM by the tests
# above; the full rebuild is compared by output below, with SPLATCAM_SLOW_TESTS=1.
UNFITTED_ATOL = 1e-5  # canonical units (2.5 um) and feature / weight values


def test_a_rebuild_matches_the_shipped_avatar_in_its_unfitted_parts(setup):
    data, avatar, _ = setup
    spec = MannequinSpec()
    with torch.random.fork_rng():  # seeded as build_mannequin seeds it
        torch.manual_seed(spec.seed)
        model, _ = initial_model(data, spec, mannequin_config(spec), torch.Generator().manual_seed(spec.seed))
    shipped = avatar.model.state_dict()
    compared = 0
    for name, value in model.state_dict().items():
        if name.startswith("exp_deform_mlp."):
            continue  # fitted
        if name == "rotations":  # q and -q are the same rotation; which one comes out is rounding's call
            q, r = (torch.nn.functional.normalize(t, dim=1) for t in (value, shipped[name]))
            assert float((q * r).sum(1).abs().min()) > 1 - 1e-6
            compared += value.numel()
            continue
        np.testing.assert_allclose(value.numpy(), shipped[name].numpy(), rtol=1e-5, atol=UNFITTED_ATOL,
                                   err_msg=name)
        compared += value.numel()
    assert compared > 12_000 * 20  # positions, scales, rotations, opacities, features at least
    camera, anchor = mannequin_camera(data, spec)
    np.testing.assert_allclose(camera.K.numpy(), avatar.camera.K.numpy(), rtol=1e-6)
    np.testing.assert_allclose(camera.viewmat.numpy(), avatar.camera.viewmat.numpy(), atol=1e-6)
    np.testing.assert_allclose(anchor.numpy(), avatar.anchor_translation.numpy(), atol=1e-6)


# Full-rebuild tolerances, over random expressions and poses: Gaussian centres within 0.1 % of
# head size on average (the fit's own error to the 3DMM is 0.08 %), output images within 1 % of
# full scale on average and 10 % at the 99th percentile (SR edges move by a fraction of a pixel).
REBUILD_MEANS_HEAD_FRACTION = 0.001
REBUILD_IMAGE_MEAN, REBUILD_IMAGE_P99 = 0.01, 0.10


def compare_avatars(a, b, size: float, count: int = 8) -> dict[str, float]:
    gen = torch.Generator().manual_seed(99)
    expressions, poses = random_expressions(count, gen), random_poses(count, gen, a.anchor_translation)
    background = torch.ones(a.config.color_channels)
    means, pixels = [], []
    with torch.no_grad():
        for e, p in zip(expressions, poses):
            ga, gb = a.model(e, p), b.model(e, p)
            means.append((ga.means - gb.means).norm(dim=-1).mean().item())
            ia = a.sr(render_gaussians(ga, a.camera, background).image.permute(2, 0, 1)[None])
            ib = b.sr(render_gaussians(gb, b.camera, background).image.permute(2, 0, 1)[None])
            pixels.append((ia - ib).abs().flatten())
    pixels = torch.cat(pixels)
    return {"means_head_fraction": float(np.mean(means)) / size, "image_mean": pixels.mean().item(),
            "image_p99": pixels.quantile(0.99).item()}


@pytest.mark.skipif(not os.environ.get("SPLATCAM_SLOW_TESTS"),
                    reason="a full mannequin rebuild takes 2-6 min on two cores; SPLATCAM_SLOW_TESTS=1 runs it")
def test_a_full_rebuild_matches_the_shipped_avatar(setup):
    data, avatar, _ = setup
    rebuilt = build_mannequin(MannequinSpec(), data=data, progress=False).avatar
    d = compare_avatars(avatar, rebuilt, head_size(data))
    print(f"rebuild vs shipped: {d}")
    assert d["means_head_fraction"] < REBUILD_MEANS_HEAD_FRACTION
    assert d["image_mean"] < REBUILD_IMAGE_MEAN and d["image_p99"] < REBUILD_IMAGE_P99
