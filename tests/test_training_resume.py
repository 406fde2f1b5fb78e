import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avatar.checkpoint import load_avatar
from avatar.train import TrainOptions, state_dir, train_avatar
from tests.training_fixtures import micro_profile, write_micro_dataset


@pytest.fixture(scope="module")
def micro_dataset(tmp_path_factory, shared_data):
    return write_micro_dataset(tmp_path_factory.mktemp("micro") / "ds")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _state(out):
    return load_file(str(state_dir(out) / "state.safetensors"))


def test_resume_continues_from_the_saved_step_with_identical_parameters(micro_dataset, tmp_path):
    profile = micro_profile(steps=6)
    straight = tmp_path / "straight"
    s = train_avatar(TrainOptions(micro_dataset, straight, profile))
    assert s.finished and s.step == 6

    resumed = tmp_path / "resumed"
    first = train_avatar(TrainOptions(micro_dataset, resumed, profile, stop_after=3))
    assert first.step == 3 and not first.finished
    saved = _state(resumed)
    assert json.loads((state_dir(resumed) / "state.json").read_text())["step"] == 3
    # The avatar written at the checkpoint holds exactly the saved parameters.
    avatar = load_avatar(resumed)
    assert torch.equal(avatar.model.positions, saved["model.positions"])
    second = train_avatar(TrainOptions(micro_dataset, resumed, profile))
    assert second.step == 6 and second.finished

    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with open(state_dir(resumed) / "loss_log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert (state_dir(resumed) / "previews" / "step_000003.png").is_file()


def test_a_time_budget_ends_the_run_and_the_schedule(micro_dataset, tmp_path):
    from dataclasses import replace

    base = micro_profile(steps=100_000)
    budget_s = 2.0
    profile = replace(base, gaussian=replace(base.gaussian, minutes=budget_s / 60, lr_final=0.1, checkpoint_every=50))
    s = train_avatar(TrainOptions(micro_dataset, tmp_path / "av", profile))
    assert s.finished and 0 < s.step < 100_000
    assert budget_s <= s.gaussian_seconds < budget_s + 5
    groups = json.loads((state_dir(tmp_path / "av") / "state.json").read_text())["param_groups"]
    # The last step ran close to the end of the budget, so the rates are near a tenth; by the
    # steps' share alone they would still be at their start.
    for g in groups:
        assert 0.1 <= g["lr"] / g["initial_lr"] < 0.2, g["name"]
    steps_only = train_avatar(TrainOptions(micro_dataset, tmp_path / "av2", profile, gaussian_steps=4))
    assert steps_only.step == 4 and steps_only.finished, "--steps alone turns the budget off"


def test_interrupt_saves_a_checkpoint(micro_dataset, tmp_path, monkeypatch):
    import avatar.train as train_module

    calls = {"n": 0}
    real = train_module.train_step

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", interrupting)
    out = tmp_path / "av"
    with pytest.raises(KeyboardInterrupt):
        train_avatar(TrainOptions(micro_dataset, out, micro_profile(steps=6)))
    assert json.loads((state_dir(out) / "state.json").read_text())["step"] == 2
    assert load_avatar(out).metadata.training["step"] == 2


def test_train_and_evaluate_commands(micro_dataset, tmp_path, monkeypatch):
    import avatar.profiles as profiles
    from runtime.cli import main

    monkeypatch.setitem(profiles.PROFILES, "tiny", micro_profile(steps=3))
    out = tmp_path / "av"
    assert main(["train", "--dataset", str(micro_dataset), "--profile", "tiny", "--out", str(out)]) == 0
    report = tmp_path / "e.json"
    video = tmp_path / "side.mp4"
    assert main(["evaluate", "--avatar", str(out), "--dataset", str(micro_dataset), "--json", str(report),
                 "--video", str(video)]) == 0
    e = json.loads(report.read_text())
    assert {"psnr", "ssim", "baseline_mean_image_psnr", "frames"} <= set(e)
    assert e["frames"] == 2 and e["resolution"] == 32
    assert np.isfinite(e["psnr"]) and 0 < e["ssim"] <= 1
    assert video.is_file()


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    from runtime.cli import main

    assert main(["train", "--dataset", str(tmp_path / "nope"), "--out", str(tmp_path / "av")]) == 2
    assert "not a splatcam dataset" in capsys.readouterr().err
    assert main(["evaluate", "--avatar", str(tmp_path / "nope"), "--dataset", str(tmp_path)]) == 2
    assert main(["prepare", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "ds")]) == 2
    assert not (tmp_path / "ds").exists()
    capsys.readouterr()
    assert main(["prepare", str(tmp_path), "--pose-refine", "--out", str(tmp_path / "ds")]) == 2
    assert "single video" in capsys.readouterr().err and not (tmp_path / "ds").exists()


def test_resuming_with_another_profile_is_refused(micro_dataset, tmp_path):
    from dataclasses import replace

    out = tmp_path / "av"
    train_avatar(TrainOptions(micro_dataset, out, micro_profile(steps=1)))
    other = replace(micro_profile(steps=1), name="other")
    with pytest.raises(ValueError, match="--restart"):
        train_avatar(TrainOptions(micro_dataset, out, other))
    assert train_avatar(TrainOptions(micro_dataset, out, other, restart=True)).step == 1
