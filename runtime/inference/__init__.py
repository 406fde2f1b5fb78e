"""Inference backends for the avatar's generator and SR CNN, behind one interface.

    backend = create_backend("auto", avatar, device="cpu")
    gaussians = backend.generate(expression, pose)   # (53,), (6,) -> GaussianSet
    rgb = backend.upsample(rendered.image)           # (H, W, C) -> (fH, fW, 3) in [0, 1]

Backends: `torch` (eager PyTorch, the reference), `compile` (torch.compile), `onnxruntime`
(the exported graphs, CPU or CUDA provider), `tensorrt` (FP16 engines, CUDA only). `auto`
builds every backend available on the device, races them in interleaved rounds of generator +
SR at the avatar's render size until one is clearly fastest (runtime/inference/auto.py), and
logs which one and the numbers that decided it (also kept in `backend.reason`); the choice is
remembered in the cache per avatar and machine, and `backend.forget_choice` (None unless the
pick was remembered) makes the next start race again.
Tensors returned live on `backend.device`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from avatar.checkpoint import Avatar
from core.errors import UserError
from core.paths import user_cache_dir
from export.onnx_export import ExportError
from runtime.inference import auto
from runtime.inference.base import BackendBase, InferenceBackend

AUTO = "auto"
BACKENDS = ("torch", "compile", "onnxruntime", "tensorrt")
logger = logging.getLogger(__name__)

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


def _fastest(avatar: Avatar, device: torch.device, cache_dir: Path | None) -> BackendBase:
    """Race every available backend (runtime/inference/auto.py) and keep the winner; the choice
    is remembered per avatar and machine so later starts build only the winner (torch.compile
    alone costs tens of seconds to build on a CPU)."""
    candidates = available_backends(device)
    choices_file = (Path(cache_dir) if cache_dir is not None else user_cache_dir()) / auto.CHOICES_FILE
    key = auto.choice_key(avatar, device, candidates)
    remembered = auto.read_choices(choices_file).get(key)
    if isinstance(remembered, dict) and remembered.get("backend") in candidates:
        try:
            best = _build(remembered["backend"], avatar, device, cache_dir)
        except ExportError:
            pass  # race again below
        else:
            best.reason = f"{remembered.get('reason', 'fastest when measured')}; measured earlier ({choices_file})"
            best.forget_choice = lambda: auto.forget_choice(choices_file, key)
            logger.info("inference backend auto -> %s: %s", best.name, best.reason)
            return best

    logger.info("inference backend auto: timing %s on %s against each other, once for this avatar and machine "
                "(building torch.compile or TensorRT engines can take minutes)", ", ".join(candidates), device)
    built: dict[str, BackendBase] = {}
    skipped: list[str] = []
    for name in candidates:
        try:
            built[name] = _build(name, avatar, device, cache_dir)
        except ExportError as e:  # e.g. TensorRT present but unable to build this graph
            skipped.append(f"{name}: {e}")
    if not built:
        raise UserError(f"no inference backend works on {device} ({'; '.join(skipped)})")
    result = auto.race(built, avatar)
    best = built[result.winner]
    best.reason = result.reason() + (f"; skipped {'; '.join(skipped)}" if skipped else "")
    logger.info("inference backend auto -> %s: %s", best.name, best.reason)
    choices = auto.read_choices(choices_file)
    choices[key] = {"backend": best.name, "reason": best.reason, "ms": result.medians_ms}
    auto.write_choices(choices_file, choices)
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
