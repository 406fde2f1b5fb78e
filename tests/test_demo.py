"""`splatcam demo` on this machine kind: no webcam, no display, no virtual camera.

The README's first command runs `splatcam demo`; here it must fall back to the procedural driver
and the file out/demo.mp4, and the avatar in that file must visibly move its mouth.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from avatar.checkpoint import load_avatar
from avatar.super_resolution import SR_FACTOR
from runtime.cli import main
from runtime.commands.demo import DEFAULT_OUT, PROCEDURAL_FPS, choose_output, find_webcam
from tracking.face_model import load_face_model_data
from tracking.procedural import DURATION_S


LIPS, EYES = slice(48, 68), slice(36, 48)  # iBUG-68 landmark ranges


def mouth_box(avatar_dir, landmarks: slice = LIPS) -> tuple[slice, slice]:
    """Pixel box of the output around some of the avatar's landmarks (default: the 20 lip
    landmarks) of ICT's mean head, at the avatar's neutral pose (facing its camera at its
    anchor), projected and scaled to the SR output, with a margin of half the box's size."""
    avatar = load_avatar(avatar_dir)
    data = load_face_model_data()
    lips = data.neutral[data.landmarks68[landmarks]] + avatar.anchor_translation.numpy()
    cam = lips @ avatar.camera.viewmat[:3, :3].numpy().T + avatar.camera.viewmat[:3, 3].numpy()
    pix = (cam / cam[:, 2:]) @ avatar.camera.K.numpy().T
    lo, hi = pix[:, :2].min(0), pix[:, :2].max(0)
    margin = (hi - lo) / 2
    (x0, y0), (x1, y1) = (lo - margin) * SR_FACTOR, (hi + margin) * SR_FACTOR
    return slice(max(0, int(y0)), int(np.ceil(y1))), slice(max(0, int(x0)), int(np.ceil(x1)))


def read_frames(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.mark.skipif(bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")),
                    reason="checks the no-display fallback of this CI machine kind")
def test_without_camera_or_display_the_demo_records_to_a_file():
    if find_webcam()[0] is not None:
        pytest.skip("this machine has a webcam")
    want, why = choose_output(None)
    if "virtual_camera" in want:
        pytest.skip("this machine has a virtual camera")
    assert want == {"out": str(DEFAULT_OUT)} and "no virtual camera" in why


def test_demo_video_shows_the_mouth_moving_without_the_face_model(demo_avatar, tmp_path, capsys, monkeypatch):
    import tracking.face_model
    import tracking.face_model_download
    from tracking.assets import AssetNotFoundError

    rows, cols = mouth_box(demo_avatar)  # before the face model goes away

    def nowhere(*args, **kwargs):
        raise AssetNotFoundError("no face model on this machine")

    def no_download(*args, **kwargs):
        raise AssertionError("the procedural demo must not need the face model")

    monkeypatch.setattr(tracking.face_model, "find_asset", nowhere)
    monkeypatch.setattr(tracking.face_model_download, "fetch_face_model", no_download)
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--procedural", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "procedural" in printed.err or "scripted" in printed.err
    frames = read_frames(out).astype(np.float32) / 255
    # Real-time: a loaded machine may drop some frames, never most of them.
    assert len(frames) >= 0.5 * DURATION_S * PROCEDURAL_FPS
    assert frames.shape[1:] == (256, 256, 3)
    mouth = frames[:, rows, cols]
    change = np.abs(mouth - mouth[0]).mean(axis=(1, 2, 3))
    rest = change[: int(PROCEDURAL_FPS * 0.5 * 1.2)]  # the script is neutral for its first 1.5 s
    assert rest.max() < 0.01, rest.max()
    assert change.max() > 0.05, change.max()  # smile, jaw open and pucker all move the lips


def test_poster_shows_the_script(demo_avatar, tmp_path):
    import cv2

    path = tmp_path / "poster.png"
    assert main(["demo", "--poster", str(path)]) == 0
    image = cv2.imread(str(path))
    assert image.shape == (256, 6 * 256, 3)
    tiles = image.reshape(256, 6, 256, 3).transpose(1, 0, 2, 3).astype(np.float32) / 255
    rows, cols = mouth_box(demo_avatar)
    jaw_open = np.abs(tiles[3][rows, cols] - tiles[0][rows, cols]).mean()
    assert jaw_open > 0.02  # the same render twice differs by 0
    rows, cols = mouth_box(demo_avatar, EYES)
    blink = np.abs(tiles[2][rows, cols] - tiles[0][rows, cols]).mean()
    assert blink > 0.01, blink


def test_the_renderer_compiles_the_rasterizer_before_the_first_frame(demo_avatar, monkeypatch):
    """From an empty cache the C++ rasterizer compiles on first use (15-30 s). In the first live
    frame that time passes while the scripted demo's clock runs on: a fresh clone's demo once
    rendered 2 of its 232 frames. Building the renderer builds the rasterizer."""
    import avatar.raster.cpu as cpu
    from runtime.inference import create_backend
    from runtime.pipeline import AvatarRenderer

    calls = []
    monkeypatch.setattr(cpu, "build_extension", lambda: calls.append("built"))
    avatar = load_avatar(demo_avatar)
    AvatarRenderer(avatar, create_backend("torch", avatar), raster="cpu", size=64)
    assert calls == ["built"]
