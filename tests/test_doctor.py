"""`splatcam doctor` on this machine, and its verdicts on described machines."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from runtime.cli import main
from runtime.doctor import Probe, diagnose, format_table, probe


def full_machine() -> Probe:
    return Probe(platform="linux", cuda_device="NVIDIA H100", cuda_version="12.4", gsplat_installed=True,
                 tensorrt_version="10.3.0", onnxruntime_providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
                 backends={"torch": "", "compile": "", "onnxruntime": "", "tensorrt": ""},
                 webcams=("/dev/video0 'HD Webcam': camera",),
                 loopbacks=("/dev/video10 'splatcam': virtual camera (v4l2loopback)",), display=True,
                 face_model="/x/ict_face_model.npz", face_model_error=None, mediapipe_version="0.10.21",
                 demo_avatar=None, cache_dir="/x/cache", cache_free_mb=10_000)


def test_a_complete_machine_can_go_live():
    d = diagnose(full_machine())
    assert d.live_ready and not d.missing


@pytest.mark.parametrize("change, component", [
    ({"webcams": ()}, "webcam"),
    ({"loopbacks": ()}, "virtual camera"),
    ({"face_model": None, "face_model_error": "not found"}, "ICT face model"),
    ({"cache_free_mb": 10.0}, "disk cache"),
    ({"backends": {"torch": "broken"}}, "inference backends"),
])
def test_each_required_piece_blocks_the_live_loop(change, component):
    d = diagnose(replace(full_machine(), **change))
    assert not d.live_ready
    assert [r.component for r in d.missing] == [component]
    assert d.missing[0].fix and "\n" not in d.missing[0].fix


def test_optional_pieces_do_not_block():
    d = diagnose(replace(full_machine(), cuda_device=None, tensorrt_version=None, display=False))
    assert d.live_ready
    assert {r.component for r in d.missing} == {"GPU / CUDA", "gsplat", "TensorRT", "display"}


def test_macos_and_windows_use_obs_for_the_virtual_camera():
    d = diagnose(replace(full_machine(), platform="darwin", loopbacks=()))
    row = next(r for r in d.rows if r.component == "virtual camera")
    assert row.ok and "OBS" in row.detail


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks this CPU-only, camera-less CI machine kind")
def test_this_machine_is_reported_as_it_is(capsys):
    p = probe()
    assert p.cuda_device is None and p.tensorrt_version is None
    code = main(["doctor"])
    out = capsys.readouterr().out
    if p.webcams or p.loopbacks:
        pytest.skip("this machine has video devices; the no-webcam verdict is not checkable here")
    assert code == 1
    fixes = out.split("to fix:")[1]
    for component, hint in [("GPU / CUDA", "pip install torch"), ("TensorRT", "pip install tensorrt"),
                            ("webcam", "webcam"), ("virtual camera", "modprobe v4l2loopback")]:
        line = next(line for line in fixes.splitlines() if line.strip().startswith(component + ":"))
        assert hint in line
    assert "live loop cannot run" in out
    assert format_table(diagnose(p)).count("\n") == len(diagnose(p).rows)
