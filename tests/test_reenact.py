"""`splatcam reenact`: d0.mp4 drives the demo mannequin (issue 5 acceptance).

d0 (78 frames, 25 fps): a man, neutral at frames 0-12, a broad smile around frames 32-56
(looked up in the video). Frame 4 is the neutral frame and 44 the smiling one; 2 and 10 are two
neutral frames used as a control for how much the mouth region changes without a smile.
"""
import av
import numpy as np
import pytest

from avatar.checkpoint import load_avatar
from avatar.super_resolution import SR_FACTOR
from runtime.cli import main

NEUTRAL, SMILE = 4, 44
CONTROL = (2, 10)


def read_frames(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def mouth_box(avatar_dir):
    """Output-pixel box around the avatar's neutral mouth landmarks at its anchor pose."""
    avatar = load_avatar(avatar_dir)
    lmk = avatar.model.landmarks[48:68] + avatar.anchor_translation
    uv = (lmk @ avatar.camera.K.T)[:, :2] / lmk[:, 2:] * SR_FACTOR
    (u0, v0), (u1, v1) = uv.min(0).values.int().tolist(), uv.max(0).values.int().tolist()
    return slice(v0 - 8, v1 + 16), slice(u0 - 12, u1 + 12)


@pytest.fixture(scope="module")
def d0(shared_data):
    return shared_data / "video" / "d0.mp4"


def test_reenact_d0_one_frame_per_driver_frame_and_the_mouth_smiles(demo_avatar, d0, tmp_path):
    out = tmp_path / "reenact.mp4"
    assert main(["reenact", "--avatar", str(demo_avatar), "--driver", str(d0), "--out", str(out)]) == 0
    frames = read_frames(out).astype(np.float32) / 255
    assert len(frames) == len(read_frames(d0)) == 78
    assert frames.shape[1:] == (256, 256, 3)
    box = mouth_box(demo_avatar)
    smile = np.abs(frames[SMILE][box] - frames[NEUTRAL][box]).mean()
    control = np.abs(frames[CONTROL[0]][box] - frames[CONTROL[1]][box]).mean()
    print(f"mouth region change: smile vs neutral {smile:.4f}, neutral vs neutral {control:.4f}")
    assert smile > 0.02 and smile > 3 * control


def test_reenact_clip_side_by_side(demo_avatar, d0, tmp_path):
    out = tmp_path / "sbs.mp4"
    assert main(["reenact", "--avatar", str(demo_avatar), "--driver", str(d0), "--out", str(out),
                 "--side-by-side", "--start", "30", "--frames", "6", "--neutral", "first-second"]) == 0
    frames = read_frames(out)
    assert frames.shape == (6, 256, 512, 3)  # d0 is 512x512: scaled to 256 beside the 256 avatar
    # The left half is the driver (green screen), the right half the avatar (white background).
    assert frames[0, 5:20, 5:20, 1].mean() > frames[0, 5:20, 5:20, 0].mean() + 20
    assert frames[0, 5:20, -20:-5].mean() > 240


def test_reenact_bad_input_fails_in_one_line(demo_avatar, tmp_path, capsys):
    out = tmp_path / "x.mp4"
    assert main(["reenact", "--avatar", str(demo_avatar), "--driver", str(tmp_path / "missing.mp4"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.mp4" in err
    assert main(["reenact", "--avatar", str(demo_avatar), "--driver", str(tmp_path), "--out",
                 str(tmp_path / "x.avi")]) == 2
    assert not out.exists() and not list(tmp_path.glob("*.mp4"))


def test_key_frames_pick_each_moment_from_the_tracking():
    from runtime.commands.reenact import key_frames
    from tracking.params import expression_index
    from tracking.params_file import ParamsSequence

    t = 10
    e = np.full((t, 53), 0.1, np.float32)
    e[3] = 0.0  # calmest
    e[5, expression_index("jawOpen")] = 0.9
    e[6, [expression_index("eyeBlink_L"), expression_index("eyeBlink_R")]] = 0.8
    e[7, [expression_index("mouthSmile_L"), expression_index("mouthSmile_R")]] = 0.7
    rot = np.zeros((t, 3), np.float32)
    rot[8, 1], rot[9, 1] = -0.3, 0.4
    valid = np.ones(t, bool)
    valid[0] = False
    e[0] = 0.0  # calmer still, but without a face: not picked
    params = ParamsSequence(e, rot, np.zeros((t, 3)), np.zeros(100), valid, 25.0)
    assert key_frames(params) == [3, 5, 6, 7, 8, 9]


def test_reenact_poster_stacks_driver_over_avatar(demo_avatar, d0, tmp_path):
    import cv2

    poster = tmp_path / "p.png"
    assert main(["reenact", "--avatar", str(demo_avatar), "--driver", str(d0), "--out", str(tmp_path / "r.mp4"),
                 "--start", "40", "--frames", "6", "--poster", str(poster)]) == 0
    img = cv2.imread(str(poster))
    assert img.shape == (512, 6 * 256, 3)  # six tiles of the 512 px driver scaled to 256 over the 256 avatar
    assert img[5:20, 5:20, 1].mean() > img[5:20, 5:20, 2].mean() + 20  # top: the green screen
    assert img[256 + 5:256 + 20, 5:20].mean() > 240  # bottom: the avatar on white
