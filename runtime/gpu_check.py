"""`make gpu-check` / `splatcam gpu-check`: every GPU test and GPU benchmark row in one run, one JSON.

The plan (`plan()`), each step a command with its own time limit; the limits add up to 520 s, so
the whole check ends within the 9 minutes it may take on one GPU, whatever hangs:

  kernels      import gsplat and rasterize once: gsplat compiles its CUDA kernels on first use
  gpu-tests    pytest of the GPU tests: gsplat against the CPU rasterizer (test_raster), CUDA-event
               stage timing (test_latency), TensorRT fp16 parity (test_inference_backends); the CPU
               tests of those files run too
  bench-raster `splatcam bench-raster`, which adds the gsplat rows on CUDA
  full-avatar  a `full`-profile avatar (103,000 Gaussians, 512 px render, full MLPs and SR CNN): the
               latency rows depend on its sizes, not on its weights, so a stand-in on a head-shaped
               shell replaces the trained one unless `--avatar DIR` names a real one
  bench-2048, bench-1024
               `splatcam bench` of that avatar at 2048 and 1024 px output (torch eager, and
               TensorRT when it is installed), procedural driver, null sink

Without CUDA nothing runs: the plan is printed and the JSON says so (`"ran": false`).

The JSON (`SCHEMA`): {"schema": 1, "ran": bool, "why_not": str|null, "device": str|null,
"torch": str, "cuda": str|null, "seconds": float, "passed": bool, "steps": [{"name", "command"
(list of str), "limit_s", "status": "passed"|"failed"|"timed_out"|"not_run", "seconds",
"returncode", "output_tail", "result"}]}. `result` per step: gpu-tests {"tests", "failures",
"errors", "skipped", "failed": [test ids], "skips": [reasons]}; bench-raster its own JSON;
bench-* the bench JSON's "backends" (fps and end-to-end / per-stage p50, p95, p99 in ms);
full-avatar {"gaussians", "render", "stand_in"}.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

SCHEMA = 1
GPU_TEST_FILES = ("tests/test_raster.py", "tests/test_latency.py", "tests/test_inference_backends.py")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    name: str
    what: str
    command: list[str]
    limit_s: float
    status: str = "not_run"
    seconds: float = 0.0
    returncode: int | None = None
    output_tail: str = ""
    result: dict | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "what": self.what, "command": self.command, "limit_s": self.limit_s,
                "status": self.status, "seconds": round(self.seconds, 1), "returncode": self.returncode,
                "output_tail": self.output_tail, "result": self.result}


@dataclass
class Plan:
    work: Path  # where the steps write their files
    avatar: Path | None  # a real full avatar, or None for the stand-in
    tensorrt: bool
    steps: list[Step] = field(default_factory=list)


def plan(work: Path, avatar: Path | None = None, tensorrt: bool = False) -> Plan:
    py, splatcam = sys.executable, [sys.executable, "-m", "runtime.cli"]
    full = avatar if avatar is not None else work / "avatar_full"
    backends = ["--backend", "torch"] + (["--backend", "tensorrt"] if tensorrt else [])
    steps = [
        Step("kernels", "compile and load gsplat's CUDA kernels (first use only)",
             [py, "-c", "from avatar.raster.gsplat_backend import gsplat_ready; why = gsplat_ready(); "
                        "print(why or 'gsplat ready'); raise SystemExit(1 if why else 0)"], 180),
        Step("gpu-tests", "gsplat vs the CPU rasterizer, CUDA-event latency, TensorRT fp16 parity",
             [py, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={work / 'gpu_tests.xml'}",
              *GPU_TEST_FILES], 120),
        Step("bench-raster", "rasterizer rows with gsplat (BENCHMARKS.md, Rasterizer)",
             [*splatcam, "bench-raster", "--json", str(work / "bench_raster.json")], 30),
        Step("full-avatar", "the `full` avatar" + (f" {avatar}" if avatar else ": a stand-in of its size"),
             [py, "-m", "runtime.gpu_check", "stand-in", str(full)] if avatar is None else [], 30),
    ]
    # The first bench builds the TensorRT engines (cached per GPU), hence its longer limit.
    for size, limit in ((2048, 100), (1024, 60)):
        steps.append(Step(f"bench-{size}", f"live-loop latency of the full avatar at {size} px output",
                          [*splatcam, "bench", "--avatar", str(full), "--size", str(size), *backends,
                           "--frames", "100", "--warmup", "10", "--json", str(work / f"bench_full_{size}.json")],
                          limit))
    return Plan(work, avatar, tensorrt, steps)


def format_plan(p: Plan) -> str:
    lines = [f"gpu-check plan ({sum(s.limit_s for s in p.steps):.0f} s at most):"]
    for s in p.steps:
        command = " ".join(s.command) if s.command else "(given with --avatar)"
        lines.append(f"  {s.name:<13}{s.limit_s:>4.0f} s  {s.what}\n{'':17}{command}")
    return "\n".join(lines)


def _tail(*outputs: str | bytes | None, lines: int = 15) -> str:
    text = "".join(o.decode(errors="replace") if isinstance(o, bytes) else (o or "") for o in outputs)
    return "\n".join(text.strip().splitlines()[-lines:])


def run_step(step: Step) -> None:
    if not step.command:
        step.status = "passed"
        return
    start = time.perf_counter()
    try:
        done = subprocess.run(step.command, cwd=REPO, capture_output=True, text=True, timeout=step.limit_s)
    except subprocess.TimeoutExpired as e:  # its output may be bytes even in text mode
        step.status, step.seconds = "timed_out", time.perf_counter() - start
        step.output_tail = _tail(e.stdout, e.stderr)
        return
    step.seconds = time.perf_counter() - start
    step.returncode = done.returncode
    step.status = "passed" if done.returncode == 0 else "failed"
    step.output_tail = _tail(done.stdout, done.stderr)


def junit_result(path: Path) -> dict:
    """Counts, failed test ids and skip reasons of a pytest --junitxml file."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    failed, skips = [], []
    for case in suite.iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(test)
        skipped = case.find("skipped")
        if skipped is not None:
            skips.append(f"{test}: {skipped.get('message', '')}")
    return {name: int(suite.get(name, 0)) for name in ("tests", "failures", "errors", "skipped")} | {
        "failed": failed, "skips": skips}


def collect(step: Step, p: Plan) -> None:
    """The step's numbers from the files it wrote."""
    try:
        if step.name == "gpu-tests":
            step.result = junit_result(p.work / "gpu_tests.xml")
        elif step.name == "bench-raster":
            step.result = json.loads((p.work / "bench_raster.json").read_text())
        elif step.name.startswith("bench-"):
            step.result = json.loads((p.work / f"bench_full_{step.name[6:]}.json").read_text())["backends"]
        elif step.name == "full-avatar":
            from avatar.checkpoint import load_avatar

            avatar = load_avatar(p.avatar or p.work / "avatar_full")
            step.result = {"gaussians": avatar.model.num_gaussians, "render": [avatar.camera.width,
                           avatar.camera.height], "stand_in": p.avatar is None}
    except (OSError, ValueError, ET.ParseError, KeyError) as e:
        step.result = {"error": f"no result ({e})"}


def execute(p: Plan, announce: Callable[[Step], None] = lambda step: None) -> None:
    p.work.mkdir(parents=True, exist_ok=True)
    for step in p.steps:
        announce(step)
        run_step(step)
        if step.status == "passed" or step.name in ("gpu-tests", "bench-raster"):
            collect(step, p)


def stand_in_avatar(out: Path, profile_name: str = "full") -> Path:
    """An avatar of a profile's sizes with untrained weights, its Gaussians on an ellipsoid head
    shell (the initialisation's own 3-NN scales, opacity 0.3), rendered at the profile's size."""
    import numpy as np
    import torch

    from avatar.camera import Camera
    from avatar.checkpoint import Avatar, save_avatar
    from avatar.profiles import get_profile
    from avatar.head_model import GaussianHeadModel
    from avatar.super_resolution import SuperResolution
    from runtime.benchmarks import HEAD_SEMI_AXES

    profile = get_profile(profile_name)
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(profile.model.num_points, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    points = direction * HEAD_SEMI_AXES
    grid = np.stack(np.meshgrid(np.linspace(-0.2, 0.2, 17), np.linspace(-0.1, 0.3, 4)), -1).reshape(-1, 2)[:68]
    a, b, c = HEAD_SEMI_AXES
    front = -c * np.sqrt(np.clip(1 - (grid[:, 0] / a) ** 2 - (grid[:, 1] / b) ** 2, 0, 1))  # the face looks along -z
    landmarks = np.c_[grid, front]
    torch.manual_seed(0)
    model = GaussianHeadModel.from_points(profile.model, points, landmarks)
    size = profile.training.resolution
    camera = Camera.looking_at_origin(size, size, fov_deg=20.0, distance=0.0)
    avatar = Avatar(model.eval(), SuperResolution.from_config(profile.model).eval(), camera,
                    torch.tensor([0.0, 0.0, 4.0]))
    avatar.metadata.training = {"kind": "gpu-check stand-in", "profile": profile_name}
    return save_avatar(avatar, out)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "stand-in":
        sys.exit("usage: python -m runtime.gpu_check stand-in AVATAR_DIR")
    print(f"wrote {stand_in_avatar(Path(sys.argv[2]))}")
