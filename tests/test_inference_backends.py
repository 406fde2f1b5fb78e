"""Inference backends: each available one agrees with eager PyTorch; auto, errors, TensorRT."""
import sys

import pytest
import torch

from avatar.super_resolution import SR_FACTOR
from core.errors import UserError
from export.tensorrt_engine import (INSTALL_HINT, TensorRTUnavailable, engine_key, import_tensorrt,
                                    sr_shape_profile, tensorrt_status)
from export_helpers import random_tiny_avatar
from runtime.inference import BACKENDS, InferenceBackend, available_backends, backend_status, create_backend

TOLERANCE = 1e-4
TRT_OK, TRT_WHY = tensorrt_status()
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def avatar():
    return random_tiny_avatar(n_points=300)


def inputs(avatar, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(53, generator=g)
    pose = torch.cat([0.3 * torch.randn(3, generator=g), 0.1 * torch.randn(3, generator=g)])
    image = 1 + 0.7 * torch.randn(avatar.camera.height, avatar.camera.width, avatar.config.color_channels,
                                  generator=g)
    return theta.to(device), pose.to(device), image.to(device)


def assert_agrees_with_eager(backend, avatar, device, tolerance):
    eager = create_backend("torch", avatar, device)
    for seed in range(2):
        theta, pose, image = inputs(avatar, device, seed)
        ref, got = eager.generate(theta, pose), backend.generate(theta, pose)
        for name in ("means", "quats", "scales", "opacities", "features"):
            r, g = getattr(ref, name), getattr(got, name)
            assert g.device.type == torch.device(device).type and g.shape == r.shape, name
            assert float((g.float() - r).abs().max()) < tolerance, name
        rgb = backend.upsample(image)
        h, w, _ = image.shape
        assert rgb.shape == (SR_FACTOR * h, SR_FACTOR * w, 3)
        assert float((rgb.float() - eager.upsample(image)).abs().max()) < tolerance


def test_eager_backend_is_the_avatar_and_leaves_it_untouched(avatar):
    before = {k: v.clone() for k, v in avatar.model.state_dict().items()}
    backend = create_backend("torch", avatar, "cpu")
    assert isinstance(backend, InferenceBackend) and backend.name == "torch"
    theta, pose, image = inputs(avatar, "cpu")
    with torch.no_grad():
        ref = avatar.model(theta, pose)
        ref_rgb = avatar.sr(image.permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    assert torch.equal(backend.generate(theta, pose).means, ref.means)
    assert torch.equal(backend.upsample(image), ref_rgb)
    assert all(torch.equal(v, before[k]) for k, v in avatar.model.state_dict().items())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["onnxruntime", "tensorrt"])
def test_exported_backends_agree_with_eager(avatar, tmp_path, name, device):
    why = backend_status(device)[name]
    if why:
        pytest.skip(f"{name} on {device}: {why}")
    backend = create_backend(name, avatar, device, cache_dir=tmp_path)
    assert backend.name == name and backend.device.type == device
    # TensorRT runs fp16 kernels: the tolerance for it is 1e-2.
    assert_agrees_with_eager(backend, avatar, device, 1e-2 if name == "tensorrt" else TOLERANCE)


def test_compile_backend_agrees_with_eager(avatar):
    why = backend_status("cpu")["compile"]
    if why:
        pytest.skip(why)
    # The smallest avatar that still has every part: compiling costs ~10-20 s on two cores.
    small = random_tiny_avatar(n_points=50, width=8, height=8)
    backend = create_backend("compile", small, "cpu")
    assert backend.name == "compile"
    assert_agrees_with_eager(backend, small, "cpu", TOLERANCE)


def test_auto_picks_the_fastest_and_says_why(avatar, tmp_path, monkeypatch, caplog):
    import logging

    import runtime.inference as inference
    import runtime.inference.auto as auto

    # torch.compile is left out here only to keep the test short (its own test covers it).
    monkeypatch.setattr(inference, "available_backends", lambda device: ["torch", "onnxruntime"])
    with caplog.at_level(logging.INFO, logger="runtime.inference"):
        backend = create_backend("auto", avatar, "cpu", cache_dir=tmp_path)
    assert backend.name in ("torch", "onnxruntime")
    assert "torch" in backend.reason and "onnxruntime" in backend.reason and "interleaved rounds" in backend.reason
    assert "auto: timing torch, onnxruntime on cpu" in caplog.text  # said before the slow part
    assert f"auto -> {backend.name}" in caplog.text
    ms = {part.split()[0]: float(part.split()[1]) for part in
          backend.reason.split("per frame ", 1)[1].split(" (")[0].split(", ")}
    assert ms[backend.name] == min(ms.values())
    assert_agrees_with_eager(backend, avatar, "cpu", TOLERANCE)
    assert backend.forget_choice is None  # measured now, not remembered

    # The next start builds only the remembered winner, without racing again ...
    def no_race(*a, **k):
        raise AssertionError("raced again although the choice was cached")

    monkeypatch.setattr(auto, "race", no_race)
    again = create_backend("auto", avatar, "cpu", cache_dir=tmp_path)
    assert again.name == backend.name and "measured earlier" in again.reason
    # ... until the live loop, behind its source, asks for a new race.
    again.forget_choice()
    with pytest.raises(AssertionError, match="raced again"):
        create_backend("auto", avatar, "cpu", cache_dir=tmp_path)


def test_available_backends_on_this_machine():
    names = available_backends("cpu")
    assert names[0] == "torch" and set(names) <= set(BACKENDS)
    assert "tensorrt" not in names  # TensorRT never runs on the CPU
    assert "onnxruntime" in names  # a project dependency
    if not torch.cuda.is_available():
        assert available_backends("cuda") == []


def test_unknown_or_unavailable_backends_are_one_line_user_errors(avatar):
    with pytest.raises(UserError, match="unknown inference backend 'fast'; choose one of auto, torch") as info:
        create_backend("fast", avatar)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="TensorRT runs on CUDA only"):
        create_backend("tensorrt", avatar, "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="needs a CUDA GPU"):
            create_backend("torch", avatar, "cuda")


def test_bad_inputs_are_rejected(avatar):
    backend = create_backend("torch", avatar)
    with pytest.raises(ValueError, match="expression must have 53"):
        backend.generate(torch.zeros(52), torch.zeros(6))
    with pytest.raises(ValueError, match=r"upsample takes an \(H, W, 32\)"):
        backend.upsample(torch.zeros(1, 32, 8, 8))


def test_tensorrt_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(TensorRTUnavailable, match=r"^TensorRT is not installed \(pip install tensorrt") as info:
        import_tensorrt()
    assert INSTALL_HINT in str(info.value) and "\n" not in str(info.value)
    assert tensorrt_status() == (False, str(info.value))


def test_tensorrt_engine_cache_key(tmp_path, avatar):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"graph one")
    b.write_bytes(b"graph two")
    shapes = sr_shape_profile(avatar)
    key = engine_key(a, "NVIDIA GeForce RTX 4090", "10.7.0", shapes)
    same = engine_key(a, "NVIDIA GeForce RTX 4090", "10.7.0", shapes)
    assert key == same and key.filename() == same.filename()
    others = [engine_key(b, "NVIDIA GeForce RTX 4090", "10.7.0", shapes),
              engine_key(a, "NVIDIA H100 80GB HBM3", "10.7.0", shapes),
              engine_key(a, "NVIDIA GeForce RTX 4090", "10.8.0", shapes),
              engine_key(a, "NVIDIA GeForce RTX 4090", "10.7.0", None),
              engine_key(a, "NVIDIA GeForce RTX 4090", "10.7.0", shapes, precision="fp32")]
    names = {k.filename() for k in others} | {key.filename()}
    assert len(names) == 6
    assert key.filename().startswith("NVIDIA_GeForce_RTX_4090-trt10.7.0-fp16-")
    assert all("/" not in n and " " not in n for n in names)
    # The SR profile spans a quarter of the render size up to the render size, channels fixed.
    (lo, opt, hi), = shapes.values()
    h, w = avatar.camera.height, avatar.camera.width
    assert opt == hi == (1, 32, h, w) and lo[:2] == (1, 32) and lo[2] <= h and lo[3] <= w


@pytest.mark.skipif(not TRT_OK, reason=f"TensorRT parity needs TensorRT and a GPU: {TRT_WHY}")
def test_tensorrt_parity_fp16(avatar, tmp_path):
    from export.onnx_export import export_avatar
    from export.parity import tensorrt_parity
    from export.tensorrt_engine import TensorRTAvatar

    files = export_avatar(avatar, tmp_path / "onnx")
    engines = TensorRTAvatar(avatar, files, tmp_path / "engines")
    report = tensorrt_parity(avatar, engines, trials=3)
    assert report.ok and report.max_error < 1e-2, report.lines()
    # Built once: a second load finds the cached engines.
    again = TensorRTAvatar(avatar, files, tmp_path / "engines")
    assert again.generator_path == engines.generator_path
    assert len(list((tmp_path / "engines").iterdir())) == 2
