"""`make gpu-check` on a machine without CUDA: it prints its plan, writes the JSON that says so and
exits 0; the plan's commands stay valid (the files exist, the CLI accepts every option), so the
check is ready for the day a GPU is at hand. gsplat is never imported on the way."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runtime.cli import build_parser, main
from runtime.gpu_check import GPU_TEST_FILES, SCHEMA, junit_result, plan, stand_in_avatar

REPO = Path(__file__).resolve().parents[1]
STEPS = ["kernels", "gpu-tests", "bench-raster", "full-avatar", "bench-2048", "bench-1024"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_without_cuda_it_prints_the_plan_and_exits_0(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    assert main(["gpu-check", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in STEPS:
        assert name in printed
    assert "no CUDA device" in printed and "nothing was run" in printed
    doc = json.loads(out.read_text())
    assert doc["schema"] == SCHEMA and doc["ran"] is False and "no CUDA" in doc["why_not"]
    assert [s["name"] for s in doc["steps"]] == STEPS
    assert all(s["status"] == "not_run" and s["command"] for s in doc["steps"])
    assert sum(s["limit_s"] for s in doc["steps"]) <= 9 * 60  # the check's budget on one GPU
    assert not (tmp_path / "gpu_check").exists()  # nothing was run, nothing written


def test_no_gsplat_import_on_the_cpu_path(tmp_path):
    code = (f"import sys; from runtime.cli import main; main(['gpu-check', '--json', r'{tmp_path / 'g.json'}']); "
            "assert 'gsplat' not in sys.modules, 'gsplat imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    if torch.cuda.is_available():
        pytest.skip("with CUDA the check imports gsplat by design")
    assert done.returncode == 0, done.stderr


def test_every_planned_command_is_valid(tmp_path):
    p = plan(tmp_path, tensorrt=True)
    assert [s.name for s in p.steps] == STEPS
    for f in GPU_TEST_FILES:
        assert (REPO / f).is_file(), f
    parser = build_parser()
    for step in p.steps:
        if step.command[1:3] == ["-m", "runtime.cli"]:
            args = parser.parse_args(step.command[3:])  # an unknown option would exit here
            assert args.command in ("bench-raster", "bench")
    bench = next(s for s in p.steps if s.name == "bench-2048").command
    assert bench[bench.index("--size") + 1] == "2048" and "tensorrt" in bench


def test_stand_in_avatar_has_the_profile_sizes(tmp_path):
    from avatar.checkpoint import load_avatar
    from avatar.profiles import get_profile

    profile = get_profile("tiny")
    avatar = load_avatar(stand_in_avatar(tmp_path / "av", "tiny"))
    assert avatar.model.num_gaussians == profile.model.num_points + profile.model.num_mouth_points
    assert avatar.camera.width == profile.training.resolution
    with torch.no_grad():  # the head is in front of the camera
        g = avatar.model(torch.zeros(53), torch.cat([torch.zeros(3), avatar.anchor_translation]))
    assert (g.means[:, 2] > 3).all()


def test_junit_counts_failures_and_skips(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text('<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
                   '<testcase classname="tests.test_raster" name="test_a"/>'
                   '<testcase classname="tests.test_raster" name="test_b"><failure message="x"/></testcase>'
                   '<testcase classname="tests.test_latency" name="test_c"><skipped message="no CUDA"/></testcase>'
                   '</testsuite></testsuites>')
    r = junit_result(xml)
    assert (r["tests"], r["failures"], r["skipped"]) == (3, 1, 1)
    assert r["failed"] == ["tests.test_raster::test_b"] and r["skips"] == ["tests.test_latency::test_c: no CUDA"]
