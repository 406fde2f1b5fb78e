"""A micro dataset and profile for training tests: seconds on a CPU, no video needed."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from avatar.config import TrainingConfig
from avatar.dataset import FORMAT_NAME, FORMAT_VERSION
from avatar.profiles import Profile, get_profile
from avatar.train_config import GaussianStageConfig, MeshStageConfig


def micro_profile(steps: int = 6) -> Profile:
    model = replace(get_profile("tiny").model, name="micro", num_points=300, num_mouth_points=20, sr_channels=4,
                    exp_color_hidden=(16,), exp_attributes_hidden=(16,), exp_deform_hidden=(16, 16))
    return Profile(
        "micro", model, TrainingConfig(resolution=8),
        MeshStageConfig(resolution=16, grid_resolution=6, sdf_hidden=(16,), init_steps=5, steps=3),
        GaussianStageConfig(steps=steps, lr_scale=10.0, checkpoint_every=3, preview_every=3, log_every=1))


def write_micro_dataset(root: Path, frames: int = 6, size: int = 32, heldout: int = 2) -> Path:
    """Frames of a head-sized ellipse on white, seen by a camera that frames the canonical head."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(frames):
        mask = np.zeros((size, size), np.uint8)
        cv2.ellipse(mask, (size // 2 + i % 2, size // 2), (size // 4, size // 3), 0, 0, 360, 255, -1)
        color = np.array([200, 150 + 10 * i, 120], np.uint8)
        img = np.where(mask[..., None] > 0, color, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"{i:06d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / f"{i:06d}.png"), mask)
    expression = np.clip(rng.normal(0.1, 0.1, (frames, 53)), 0, 1).astype(np.float32)
    return _write_frames(root, expression, np.tile(np.float32([0.0, 0.1, 1.9]), (frames, 1)), size, heldout)


def _write_frames(root: Path, expression: np.ndarray, translation: np.ndarray, size: int, heldout: int) -> Path:
    """frames.npz and dataset.json beside images/ and masks/: one camera of focal `size` pixels at
    the origin, no head rotation, the mean identity."""
    from tracking.face_model import CanonicalLandmarks, load_face_model_data

    frames = len(expression)
    identity = np.zeros(100, np.float32)
    data = load_face_model_data()
    f = float(size)
    arrays = dict(
        expression=expression, rotation=np.zeros((frames, 3), np.float32), translation=translation,
        landmarks3d=CanonicalLandmarks(data)(identity, expression),
        camera=np.zeros(frames, np.int64), source_frame=np.arange(frames),
        heldout=np.arange(frames) >= frames - heldout,
        K=np.float32([[[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]]]), viewmat=np.eye(4, dtype=np.float32)[None],
        identity=identity)
    np.savez(root / "frames.npz", **arrays)
    (root / "dataset.json").write_text(json.dumps({
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "size": size, "fps": 25.0, "source": "synthetic",
        "frames": frames, "train": frames - heldout, "heldout": heldout, "dropped": 0, "crop": None,
        "face_model_checksum": data.checksum}))
    return root


def write_moving_head_dataset(root: Path, frames: int = 40, size: int = 64, heldout: int = 6) -> Path:
    """A painted ball of head size (dark hair above, skin below, two eyes) sliding left and right in
    front of the camera; the poses say where it is. The mean image of such frames is a smear,
    so beating it on held-out frames needs an avatar that learned the head and follows the pose."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    f, c, radius, y, z = float(size), size / 2, 0.35, 0.1, 1.9
    xs = 0.3 * np.sin(0.9 * np.arange(frames))
    for i, x in enumerate(xs):
        u, v, r = f * x / z + c, f * y / z + c, f * radius / z
        img = np.full((size, size, 3), 255, np.uint8)
        mask = np.zeros((size, size), np.uint8)
        centre = (round(u * 16), round(v * 16))  # cv2 draws with 4 fractional bits
        cv2.circle(mask, centre, round(r * 16), 255, -1, cv2.LINE_AA, 4)
        cv2.circle(img, centre, round(r * 16), (220, 170, 140), -1, cv2.LINE_AA, 4)
        cv2.ellipse(img, centre, (round(r * 16), round(r * 16)), 0, 180, 360, (70, 45, 30), -1, cv2.LINE_AA, 4)
        for side in (-1, 1):
            eye = (round((u + side * 0.4 * r) * 16), round((v + 0.2 * r) * 16))
            cv2.circle(img, eye, round(0.12 * r * 16), (20, 20, 20), -1, cv2.LINE_AA, 4)
        cv2.imwrite(str(root / "images" / f"{i:06d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / f"{i:06d}.png"), mask)
    expression = np.zeros((frames, 53), np.float32)
    translation = np.stack([xs, np.full(frames, y), np.full(frames, z)], 1).astype(np.float32)
    return _write_frames(root, expression, translation, size, heldout)
