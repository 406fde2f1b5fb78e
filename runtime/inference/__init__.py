"""Inference backends for the avatar's generator and SR CNN, behind one interface.

    backend = create_backend("auto", avatar, device="cpu")
    gaussians = backend.generate(expression, pose)   # (53,), (6,) -> GaussianSet
    rgb = backend.upsample(rendered.image)           # (H, W, C) -> (4H, 4W, 3) in [0, 1]

Backends: `torch` (eager PyTorch, the reference), `compile` (torch.compile), `onnxruntime`
(the exported graphs, CPU or CUDA provider), `tensorrt` (FP16 engines, CUDA only). `auto`
builds every backend available on the device, times generator + SR on a few frames at the
avatar's render size, keeps the fastest and prints which one and the timings that decided it
(also kept in `backend.reason`); the choice is remembered in the cache per avatar and machine.
Tensors returned live on `backend.device`.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from avatar.checkpoint import Avatar
from export.onnx_export import ExportError
from runtime.cli import UserError
from runtime.inference.base import BackendBase, InferenceBackend
from tracking.assets import user_cache_dir

AUTO = "auto"
BACKENDS = ("torch", "compile", "onnxruntime", "tensorrt")
AUTO_FRAMES = 5  # timed frames per candidate, after one warm-up frame
AUTO_CHOICES_FILE = "inference_auto.json"

__all__ = ["AUTO", "BACKENDS", "InferenceBackend", "available_backends", "backend_status", "create_backend"]


def backend_status(device: torch.device | str = "cpu") -> dict[str, str]:
    """Every backend name -> "" when usable on `device`, else one line saying what is missing."""
    from export.tensorrt_engine import tensorrt_status
    from runtime.inference.onnxruntime_backend import onnxruntime_status
    from runtime.inference.torch_backends import compile_status

    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        return dict.fromkeys(BACKENDS, "no CUDA device here")
    if device.type not in ("cpu", "cuda"):
        return dict.fromkeys(BACKENDS, f"device {device.type} is not supported (use cpu or cuda)")
    status = {"torch": (True, ""), "compile": compile_status(device), "onnxruntime": onnxruntime_status(device)}
    status["tensorrt"] = tensorrt_status() if device.type == "cuda" else (False, "TensorRT runs on CUDA only")
    return {name: "" if ok else why for name, (ok, why) in status.items()}


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    return [name for name, why in backend_status(device).items() if not why]


def _build(name: str, avatar: Avatar, device: torch.device, cache_dir: Path | None) -> BackendBase:
    if name == "torch":
        from runtime.inference.torch_backends import EagerBackend
        return EagerBackend(avatar, device)
    if name == "compile":
        from runtime.inference.torch_backends import CompileBackend
        return CompileBackend(avatar, device)
    if name == "onnxruntime":
        from runtime.inference.onnxruntime_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend(avatar, device, cache_dir)
    from runtime.inference.tensorrt_backend import TensorRTBackend
    return TensorRTBackend(avatar, device, cache_dir)


def frame_time_ms(backend: InferenceBackend, avatar: Avatar, frames: int = AUTO_FRAMES, seed: int = 0) -> float:
    """Median wall time of generate + upsample at the avatar's render size, after one warm-up frame."""
    from export.parity import random_inputs

    gen = torch.Generator().manual_seed(seed)
    times = []
    for i in range(frames + 1):
        theta, pose, image = (t.to(backend.device) for t in random_inputs(avatar, gen))
        image = image[0].permute(1, 2, 0)
        if backend.device.type == "cuda":
            torch.cuda.synchronize(backend.device)
        start = time.perf_counter()
        backend.generate(theta, pose)
        backend.upsample(image)
        if backend.device.type == "cuda":
            torch.cuda.synchronize(backend.device)
        if i:
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def _auto_key(avatar: Avatar, device: torch.device, candidates: list[str]) -> str:
    """What the auto choice depends on: the avatar, the machine, the candidates and their versions."""
    from export.onnx_export import avatar_fingerprint

    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "none"

    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{platform.machine()} {platform.processor()} x{torch.get_num_threads()} threads"
    return " | ".join([avatar_fingerprint(avatar)[:16], machine, ",".join(candidates),
                       f"torch {torch.__version__}", f"onnxruntime {ort_version}"])


def _read_choices(path: Path) -> dict:
    try:
        choices = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return choices if isinstance(choices, dict) else {}


def _fastest(avatar: Avatar, device: torch.device, cache_dir: Path | None) -> BackendBase:
    """Measure every available backend and keep the fastest; the choice is remembered per
    avatar and machine so later starts build only the winner (torch.compile alone costs tens
    of seconds to build on a CPU)."""
    candidates = available_backends(device)
    choices_file = (Path(cache_dir) if cache_dir is not None else user_cache_dir()) / AUTO_CHOICES_FILE
    key = _auto_key(avatar, device, candidates)
    remembered = _read_choices(choices_file).get(key)
    if isinstance(remembered, dict) and remembered.get("backend") in candidates:
        try:
            best = _build(remembered["backend"], avatar, device, cache_dir)
        except ExportError:
            pass  # measure again below
        else:
            best.reason = f"{remembered.get('reason', 'fastest when measured')}; measured earlier ({choices_file})"
            print(f"inference backend auto -> {best.name}: {best.reason}", file=sys.stderr)
            return best

    print(f"inference backend auto: timing {', '.join(candidates)} on {device}, once for this avatar and "
          "machine (building torch.compile or TensorRT engines can take minutes)", file=sys.stderr)
    timings: dict[str, float] = {}
    skipped: list[str] = []
    best = None
    for name in candidates:
        try:
            candidate = _build(name, avatar, device, cache_dir)
        except ExportError as e:  # e.g. TensorRT present but unable to build this graph
            skipped.append(f"{name}: {e}")
            continue
        timings[name] = frame_time_ms(candidate, avatar)
        if best is None or timings[name] < timings[best.name]:
            best = candidate
    if best is None:
        raise UserError(f"no inference backend works on {device} ({'; '.join(skipped)})")
    ranked = ", ".join(f"{n} {ms:.1f} ms" for n, ms in sorted(timings.items(), key=lambda kv: kv[1]))
    best.reason = (f"fastest of the backends available on {device}: generator + SR per frame {ranked} "
                   f"(median of {AUTO_FRAMES})" + (f"; skipped {'; '.join(skipped)}" if skipped else ""))
    print(f"inference backend auto -> {best.name}: {best.reason}", file=sys.stderr)
    choices = _read_choices(choices_file)
    choices[key] = {"backend": best.name, "reason": best.reason, "ms": timings}
    try:
        choices_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = choices_file.with_name(f".{choices_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps(choices, indent=1) + "\n")
        os.replace(tmp, choices_file)
    except OSError:
        pass  # a read-only cache only costs a new measurement next time
    return best


def create_backend(name: str, avatar: Avatar, device: torch.device | str = "cpu",
                   cache_dir: Path | None = None) -> InferenceBackend:
    """A backend by name ("auto" picks the fastest); anything unusable raises UserError (one line).

    `cache_dir` is the root for exported files (`onnx/`, `tensorrt/` below it); default is the
    user cache (~/.cache/splatcam).
    """
    device = torch.device(device)
    if name != AUTO and name not in BACKENDS:
        raise UserError(f"unknown inference backend {name!r}; choose one of {', '.join((AUTO, *BACKENDS))}")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"inference runs on cpu or cuda, not {device}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"inference on {device} needs a CUDA GPU; torch sees none here (use the cpu)")
    try:
        if name == AUTO:
            return _fastest(avatar, device, cache_dir)
        status = backend_status(device)
        if status[name]:
            raise UserError(f"inference backend {name} is not available on {device}: {status[name]}")
        return _build(name, avatar, device, cache_dir)
    except ExportError as e:
        raise UserError(str(e)) from None
