"""`splatcam render`: the pipeline end to end on a tiny avatar, and one-line errors for bad input."""
import re
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from avatar.camera import Camera
from avatar.checkpoint import TENSORS_FILE, Avatar, save_avatar
from avatar.head_model import GaussianHeadModel
from avatar.profiles import get_profile
from avatar.super_resolution import SuperResolution
from runtime.cli import main
from runtime.offline import frame_poses, held_frame_index
from tracking.params_file import ParamsSequence

RES = 24  # low-resolution side; the video is 4x this


@pytest.fixture(scope="module")
def avatar_dir(tmp_path_factory, shared_data):
    """A tiny untrained avatar on the real ICT head surface, framed by a camera 4 units away."""
    from tracking.face_model import load_face_model_data

    data = load_face_model_data(shared_data / "ict_face_model.npz")
    surface = np.concatenate([data.neutral[data.region("face")], data.neutral[data.region("head_neck")]])
    cfg = get_profile("tiny").model
    torch.manual_seed(0)
    model = GaussianHeadModel.from_points(cfg, surface[::40], data.neutral[data.landmarks68],
                                          colors=np.full((len(surface[::40]), 3), 0.6))
    avatar = Avatar(model, SuperResolution.from_config(cfg), Camera.looking_at_origin(RES, RES),
                    anchor_translation=torch.zeros(3))
    return save_avatar(avatar, tmp_path_factory.mktemp("avatars") / "tiny")


def write_params(path, frames=3, **overrides):
    """A params file in `splatcam track`'s format; `overrides` replace (None: drop) arrays."""
    from tracking.params import EXPRESSION_NAMES

    rng = np.random.default_rng(0)
    arrays = {
        "expression": rng.uniform(0, 1, (frames, 53)).astype(np.float32),
        "rotation": (rng.normal(size=(frames, 3)) * 0.1).astype(np.float32),
        "translation": (np.array([0.0, 0.0, 6.0]) + rng.normal(size=(frames, 3)) * 0.02).astype(np.float32),
        "identity": np.zeros(100, np.float32),
        "valid": np.ones(frames, bool),
        "fps": np.float64(30.0),
        "expression_names": np.array(EXPRESSION_NAMES),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def run_cli(capsys, *args):
    code = main(["render", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.err.strip()


def read_video(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)], \
            float(container.streams.video[0].average_rate)


def test_one_frame_per_params_frame_held_and_anchored(avatar_dir, tmp_path, capsys):
    # Checked through what the command promises, not by re-rendering: frame 2 is invalid and must
    # repeat frame 1; moving every tracked translation by the same offset must change nothing
    # (anchoring), unless --absolute-translation.
    frames, valid = 4, np.array([True, True, False, True])
    base = write_params(tmp_path / "p.npz", frames=frames, valid=valid)
    seq = dict(np.load(base))
    shifted = write_params(tmp_path / "shifted.npz", frames=frames, valid=valid,
                           translation=seq["translation"] + np.float32([0.2, -0.1, 0.5]))
    videos = {}
    for name, params, extra in (("base", base, []), ("shifted", shifted, []),
                                ("absolute", shifted, ["--absolute-translation"])):
        code, err = run_cli(capsys, "--avatar", avatar_dir, "--params", params, "--out", tmp_path / f"{name}.mp4",
                            *extra)
        assert code == 0, err
        videos[name], rate = read_video(tmp_path / f"{name}.mp4")
        assert len(videos[name]) == frames and videos[name][0].shape == (4 * RES, 4 * RES, 3)
        assert rate == pytest.approx(30.0)
    v = [f.astype(int) for f in videos["base"]]
    assert np.abs(v[2] - v[1]).max() <= 2  # the held frame (H.264 may round a repeat differently)
    assert np.abs(v[3] - v[1]).mean() > 1.0  # different coefficients do show
    # Kept, the shift moves the whole head; anchored, the same heads render again. Not to the
    # byte: a float32 rounding of the anchored translation can flip the depth order of two nearly
    # level Gaussians (which way depends on the CPU) and H.264 answers with a few changed blocks.
    moved = np.abs(videos["absolute"][0].astype(int) - v[0]).mean()
    assert moved > 1.0
    for a, b in zip(videos["shifted"], v):
        differs = np.abs(a.astype(int) - b).mean()
        assert differs < 0.1 * moved, (differs, moved)


def test_old_backend_spelling_still_selects_the_rasterizer(avatar_dir, tmp_path, capsys):
    params = write_params(tmp_path / "p.npz", frames=1)
    code, err = run_cli(capsys, "--avatar", avatar_dir, "--params", params, "--out", tmp_path / "o.mp4",
                        "--backend", "cpu")
    assert code == 0 and "deprecated: use --raster cpu" in err


def test_invalid_frames_repeat_the_last_valid_one():
    valid = np.array([False, True, False, False, True, False])
    assert held_frame_index(valid).tolist() == [1, 1, 1, 1, 4, 4]


def test_translation_is_anchored_on_the_avatar_framing():
    t = np.array([[0.1, 0.0, 5.0], [0.3, 0.2, 5.4], [0.0, 0.0, 0.0]], np.float32)
    t[2] = t[1]  # the tracker holds the last value on a missed frame
    seq = ParamsSequence(np.zeros((3, 53), np.float32), np.ones((3, 3), np.float32), t,
                         np.zeros(100, np.float32), np.array([True, True, False]), 30.0)
    anchor = np.array([0.0, 0.0, 1.0], np.float32)
    poses = frame_poses(seq, anchor, absolute=False)
    np.testing.assert_allclose(poses[:2, 3:], [[-0.1, -0.1, 0.8], [0.1, 0.1, 1.2]], atol=1e-6)
    np.testing.assert_allclose(poses[:2, :3], 1.0)
    np.testing.assert_allclose(frame_poses(seq, anchor, absolute=True)[:2, 3:], t[:2])


BAD_PARAMS = {
    "wrong expression width": (dict(expression=np.zeros((3, 52), np.float32)), "expression has shape \\(3, 52\\)"),
    "frame counts differ": (dict(rotation=np.zeros((2, 3), np.float32)), "rotation has shape \\(2, 3\\)"),
    "missing translation": (dict(translation=None), "missing arrays \\['translation'\\]"),
    "no valid frame": (dict(valid=np.zeros(3, bool)), "no frame has a tracked face"),
    "bad fps": (dict(fps=np.float64(0.0)), "fps must be a positive number"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS))
def test_bad_params_exit_2_with_one_line(case, avatar_dir, tmp_path, capsys):
    overrides, pattern = BAD_PARAMS[case]
    params = write_params(tmp_path / "p.npz", **overrides)
    out = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "--avatar", avatar_dir, "--params", params, "--out", out)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("splatcam render: error:")
    assert re.search(pattern, err), err
    assert not out.exists()


def test_other_bad_inputs_exit_2_with_one_line(avatar_dir, tmp_path, capsys):
    params = write_params(tmp_path / "p.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("avatar.json", TENSORS_FILE):
        (broken / name).write_bytes((avatar_dir / name).read_bytes())
    torch.save({"x": torch.zeros(2)}, broken / TENSORS_FILE)
    cases = [
        (["--avatar", avatar_dir, "--params", tmp_path / "nope.npz"], "no such params file"),
        (["--avatar", avatar_dir, "--params", garbage], "not a readable .npz"),
        (["--avatar", tmp_path / "no_avatar", "--params", params], "no such avatar directory"),
        (["--avatar", broken, "--params", params], "never unpickles"),
        (["--avatar", avatar_dir, "--params", params, "--fps", "-3"], "--fps must be a positive number"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--avatar", avatar_dir, "--params", params, "--raster", "gsplat"], "needs a CUDA GPU"))
    for args, message in cases:
        code, err = run_cli(capsys, *args, "--out", tmp_path / "out.mp4")
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (args, err)
    code, err = run_cli(capsys, "--avatar", avatar_dir, "--params", params, "--out", tmp_path / "out.avi")
    assert code == 2 and "must end in .mp4" in err
    assert not (tmp_path / "out.mp4").exists()


def test_real_entry_point_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "runtime.cli", "render", "--avatar", str(tmp_path / "x"),
                             "--params", str(tmp_path / "p.npz"), "--out", str(tmp_path / "o.mp4")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"splatcam render: error: {tmp_path / 'p.npz'}: no such params file"]
