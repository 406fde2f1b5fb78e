"""Avatar directories: exact round trip, atomic save, and one-line errors for every bad input."""
import json
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import avatar.checkpoint as checkpoint
from avatar.camera import Camera
from avatar.checkpoint import (FORMAT_VERSION, META_FILE, TENSORS_FILE, Avatar, AvatarMetadata,
                               CheckpointError, load_avatar, save_avatar)
from avatar.head_model import GaussianHeadModel
from avatar.profiles import get_profile
from avatar.super_resolution import SuperResolution


def make_avatar(n_points=120, seed=0, torso=(0.0, 0.0)) -> Avatar:
    cfg = replace(get_profile("tiny").model, torso_near=torso[0], torso_far=torso[1])
    rng = np.random.default_rng(seed)
    model = GaussianHeadModel.from_points(cfg, rng.normal(size=(n_points, 3)) * 0.3,
                                          rng.normal(size=(68, 3)) * 0.3, seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # not the initial values: the round trip must keep them
    sr = SuperResolution.from_config(cfg)
    camera = Camera.looking_at_origin(16, 12)
    meta = AvatarMetadata(face_model_checksum="ab" * 32, training={"iterations": 12, "psnr": 31.5})
    return Avatar(model, sr, camera, torch.tensor([0.0, 0.1, 0.0]), meta)


@pytest.fixture
def saved(tmp_path):
    av = make_avatar()
    return av, save_avatar(av, tmp_path / "av")


def test_round_trip_is_exact(saved):
    av, path = saved
    loaded = load_avatar(path)
    assert loaded.config == av.config
    assert loaded.metadata == av.metadata
    assert (loaded.camera.width, loaded.camera.height) == (16, 12)
    assert torch.equal(loaded.camera.K, av.camera.K) and torch.equal(loaded.camera.viewmat, av.camera.viewmat)
    assert torch.equal(loaded.anchor_translation, av.anchor_translation)
    for mine, theirs in ((av.model, loaded.model), (av.sr, loaded.sr)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not loaded.model.landmarks.requires_grad
    theta, pose = torch.rand(53), torch.tensor([0.1, 0.0, 0.2, 0.0, 0.0, 1.0])
    with torch.no_grad():
        assert torch.equal(av.model(theta, pose).means, loaded.model(theta, pose).means)
    meta = json.loads((path / META_FILE).read_text())
    assert meta["format"] == "splatcam-avatar" and meta["format_version"] == FORMAT_VERSION
    assert meta["contract_version"] == 1 and meta["model_config"]["name"] == "tiny"


def test_a_torso_round_trips_with_its_rest_rotation(tmp_path):
    av = make_avatar(torso=(0.05, 0.3))
    loaded = load_avatar(save_avatar(av, tmp_path / "av"))
    assert loaded.config.has_torso and torch.equal(loaded.model.rest_rotation, av.model.rest_rotation)
    assert not loaded.model.rest_rotation.requires_grad
    theta, pose = torch.rand(53), torch.tensor([0.1, 0.0, 0.2, 0.0, 0.0, 1.0])
    with torch.no_grad():
        assert torch.equal(av.model(theta, pose).means, loaded.model(theta, pose).means)


def test_the_training_videos_frame_round_trips_and_cuts_renders(tmp_path):
    """An avatar trained on a crop past its video's frame keeps that frame; at any output size its
    window is each pixel's share inside it (the frame scaled with the view)."""
    av = make_avatar()
    av.metadata.frame = (-2.0, 1.5, 12.25, 20.0)  # camera pixels of the 16 x 12 view
    loaded = load_avatar(save_avatar(av, tmp_path / "av"))
    assert loaded.metadata.frame == av.metadata.frame
    window = loaded.frame_window(32)[..., 0]  # twice the camera's size
    assert window.shape == (24, 32)
    assert torch.all(window[:3] == 0) and torch.equal(window[3], torch.tensor([1.0] * 24 + [0.5] + [0.0] * 7))
    assert torch.all(window[4:, :24] == 1) and torch.all(window[:, 25:] == 0)
    assert make_avatar().frame_window(32) is None


def test_save_replaces_an_avatar_and_leaves_no_temporaries(saved, tmp_path):
    _, path = saved
    other = make_avatar(n_points=80, seed=1)
    save_avatar(other, path)
    assert load_avatar(path).model.num_gaussians == 80 + other.config.num_mouth_points
    assert sorted(p.name for p in tmp_path.iterdir()) == ["av"]


def test_save_refuses_to_clobber_a_foreign_directory(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not an avatar directory"):
        save_avatar(make_avatar(), tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_interrupted_save_keeps_the_old_avatar(saved, tmp_path, monkeypatch):
    av, path = saved
    before = (path / TENSORS_FILE).read_bytes()

    def interrupted(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_avatar(make_avatar(seed=2), path)
    with pytest.raises(KeyboardInterrupt):
        save_avatar(make_avatar(seed=2), tmp_path / "fresh")
    assert (path / TENSORS_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["av"]


def corrupt_pickle(path):
    (path / TENSORS_FILE).write_bytes(pickle.dumps({"model.positions": np.zeros((3, 3))}))


def corrupt_torch_save(path):
    torch.save({"model.positions": torch.zeros(3, 3)}, path / TENSORS_FILE)


def corrupt_truncate(path):
    data = (path / TENSORS_FILE).read_bytes()
    (path / TENSORS_FILE).write_bytes(data[: len(data) - 100])


def corrupt_header(path):
    data = bytearray((path / TENSORS_FILE).read_bytes())
    data[8:20] = b"not json{{{{"
    (path / TENSORS_FILE).write_bytes(bytes(data))


def corrupt_foreign(path):
    save_file({"encoder.weight": torch.zeros(4, 4), "decoder.bias": torch.zeros(4)}, str(path / TENSORS_FILE))


def corrupt_missing_key(path):
    tensors = load_file(str(path / TENSORS_FILE))
    del tensors["sr.head.bias"]
    save_file(tensors, str(path / TENSORS_FILE))


def corrupt_shape(path):
    tensors = load_file(str(path / TENSORS_FILE))
    tensors["model.features"] = torch.zeros(tensors["model.features"].shape[0], 7)
    save_file(tensors, str(path / TENSORS_FILE))


def corrupt_dtype(path):
    tensors = load_file(str(path / TENSORS_FILE))
    tensors["model.positions"] = tensors["model.positions"].double()
    save_file(tensors, str(path / TENSORS_FILE))


def edit_meta(**changes):
    def corrupt(path):
        meta = json.loads((path / META_FILE).read_text())
        meta.update(changes)
        (path / META_FILE).write_text(json.dumps(meta))
    return corrupt


def corrupt_json_syntax(path):
    (path / META_FILE).write_text('{"format": "splatcam-avatar",\n "format_version": ')


def remove(name):
    return lambda path: (path / name).unlink()


CASES = {
    "pickle": (corrupt_pickle, "never unpickles"),
    "torch.save": (corrupt_torch_save, "never unpickles"),
    "truncated": (corrupt_truncate, "not a readable safetensors"),
    "bad header": (corrupt_header, "not a readable safetensors"),
    "foreign": (corrupt_foreign, "no model.positions"),
    "missing key": (corrupt_missing_key, "missing \\['sr.head.bias'\\]"),
    "wrong shape": (corrupt_shape, "model.features has shape \\[.*, 7\\]"),
    "wrong dtype": (corrupt_dtype, "F64"),
    "newer format": (edit_meta(format_version=FORMAT_VERSION + 1), "newer splatcam"),
    "other format": (edit_meta(format="something-else"), "not a splatcam avatar"),
    "other contract": (edit_meta(contract_version=99), "coefficient contract 99"),
    "bad config": (edit_meta(model_config={"feature_dim": "wide"}), "feature_dim must be an integer"),
    "unknown config": (edit_meta(model_config={"layers": 3}), "unknown entries"),
    "config mismatch": (edit_meta(model_config=get_profile("small").model.to_dict()), "do not match|shape"),
    "bad camera": (edit_meta(camera={"width": 0, "height": 4}), "camera"),
    "bad frame": (edit_meta(frame=[0, 0, 16]), "frame"),
    "empty frame": (edit_meta(frame=[8, 0, 4, 12]), "frame"),
    "json syntax": (corrupt_json_syntax, "not readable JSON"),
    "no json": (remove(META_FILE), "missing avatar.json"),
    "no tensors": (remove(TENSORS_FILE), "missing avatar.safetensors"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_checkpoints_raise_one_line_checkpoint_error(saved, case):
    _, path = saved
    corrupt, pattern = CASES[case]
    corrupt(path)
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_avatar(path)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such avatar directory"):
        load_avatar(tmp_path / "nowhere")
