"""ONNX export of an avatar's generator (six MLPs, λ blend, pose transform) and SR CNN.

Two graphs per avatar:

- `generator.onnx`: inputs `expression` (53,) and `pose` (6,) = (axis-angle, translation), all
  float32; outputs `means` (N,3), `quats` (N,4) unit w-x-y-z, `scales` (N,3), `opacities` (N,),
  `features` (N,C): exactly `GaussianHeadModel.forward_tensors`. The neutral Gaussians are
  initializers and constant folding bakes everything that does not depend on θ or β into them
  (λ_exp from the landmark distances, tanh(F0), γ(X0)), so the graph only runs the MLPs and T
  (see `fold_constants`).
- `sr.onnx`: input `features` (1, C, H, W), output `rgb` (1, 3, fH, fW) in (0, 1), with H and W
  dynamic so one file serves every render size.

The classic TorchScript exporter (`dynamo=False`) is used: the torch.export-based one needs
onnxscript, which is not a dependency, and the graphs here have no control flow that would
need it. Files are written to a temporary name and renamed, so an interrupted export never
leaves a truncated model behind; `cached_onnx` keys exports by a hash of the avatar's tensors
and config so the live loop exports once per avatar, not once per start.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from avatar.checkpoint import Avatar
from avatar.head_model import GaussianHeadModel
from core.atomic import atomic_file
from core.paths import user_cache_dir
from tracking.params import N_EXPRESSION

OPSET = 17
# Bump when the exported graphs change meaning or layout, so cached exports are rebuilt.
EXPORT_VERSION = 1
GENERATOR_FILE = "generator.onnx"
SR_FILE = "sr.onnx"
GENERATOR_INPUTS = ("expression", "pose")
GENERATOR_OUTPUTS = ("means", "quats", "scales", "opacities", "features")
SR_INPUT = "features"
SR_OUTPUT = "rgb"


class ExportError(ValueError):
    """An export that cannot be done or did not check out; the message is one line."""


@dataclass(frozen=True)
class OnnxFiles:
    generator: Path
    sr: Path


class GeneratorGraph(nn.Module):
    """The generator as a module with tensor outputs only: what ONNX and torch.compile see."""

    def __init__(self, model: GaussianHeadModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, expression: torch.Tensor, pose: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.forward_tensors(expression, pose)


def fold_constants(path: Path) -> None:
    """Rewrite `path` with every subgraph that depends only on initializers precomputed.

    torch's exporter leaves the landmark-distance blend, tanh(F0) and γ(X0) as nodes over the
    neutral-Gaussian initializers; ONNX Runtime's basic (provider-independent, standard-op)
    optimisation level folds them into constants. Its output declares ONNX Runtime's extra
    opset domains; the unused ones are dropped so other consumers (TensorRT) see a plain graph.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    folded = path.with_name(path.name + ".folded")
    options.optimized_model_filepath = str(folded)
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model = onnx.load(str(folded))
    finally:
        folded.unlink(missing_ok=True)
    used = {node.domain for node in model.graph.node} | {""}
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.save(model, str(path))


def _export(module: nn.Module, args: tuple, path: Path, input_names, output_names,
            dynamic_axes: dict | None = None, fold: bool = False) -> Path:
    module = module.eval()

    def write(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            # The legacy exporter's deprecation notice, and its note that InstanceNorm without
            # running statistics exports with train=True, which is what the module computes.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(tmp), dynamo=False, opset_version=OPSET,
                              do_constant_folding=True, input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=dynamic_axes)
        if fold:
            fold_constants(tmp)
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
            raise ExportError(f"{path.name}: exported graph fails onnx.checker: {' '.join(str(e).split())}") from None

    with atomic_file(path) as tmp:
        write(tmp)
    return Path(path)


def export_generator(model: GaussianHeadModel, path: str | os.PathLike) -> Path:
    """Write the generator graph of `model` (on the CPU, float32) to `path`."""
    graph = GeneratorGraph(model).to("cpu", torch.float32)
    example = (torch.zeros(N_EXPRESSION), torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]))
    return _export(graph, example, Path(path), GENERATOR_INPUTS, GENERATOR_OUTPUTS, fold=True)


def export_sr(sr: nn.Module, path: str | os.PathLike, height: int, width: int) -> Path:
    """Write the SR CNN to `path` with dynamic height and width (`height` x `width` is the trace size)."""
    sr = sr.to("cpu", torch.float32)
    example = (torch.zeros(1, sr.in_channels, height, width),)
    axes = {SR_INPUT: {2: "height", 3: "width"}, SR_OUTPUT: {2: "height_x4", 3: "width_x4"}}
    return _export(sr, example, Path(path), (SR_INPUT,), (SR_OUTPUT,), axes)


def export_avatar(avatar: Avatar, out_dir: str | os.PathLike) -> OnnxFiles:
    """Both graphs of `avatar` into `out_dir`. The avatar itself is not moved or modified."""
    out = Path(out_dir)
    # Export works on CPU copies so an avatar living on a GPU stays where it is.
    model = copy.deepcopy(avatar.model).to("cpu")
    sr = copy.deepcopy(avatar.sr).to("cpu")
    cam = avatar.camera
    return OnnxFiles(generator=export_generator(model, out / GENERATOR_FILE),
                     sr=export_sr(sr, out / SR_FILE, cam.height, cam.width))


def avatar_fingerprint(avatar: Avatar) -> str:
    """sha256 over the avatar's config and every generator / SR tensor (names, shapes, bytes).

    The same content as its `avatar.safetensors` (minus the camera, which the graphs do not use)
    without needing the file: in-memory avatars get a key too.
    """
    h = hashlib.sha256()
    h.update(json.dumps({"config": avatar.config.to_dict(), "export_version": EXPORT_VERSION,
                         "opset": OPSET, "torch": torch.__version__}, sort_keys=True).encode())
    for prefix, module in (("model.", avatar.model), ("sr.", avatar.sr)):
        for name, tensor in sorted(module.state_dict().items()):
            t = tensor.detach().to("cpu", torch.float32).contiguous()
            h.update(f"{prefix}{name}:{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()


def onnx_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir) if cache_dir is not None else user_cache_dir() / "onnx"


def cached_onnx(avatar: Avatar, cache_dir: str | os.PathLike | None = None) -> OnnxFiles:
    """The avatar's ONNX files from the cache, exported there first if missing."""
    folder = onnx_cache_dir(cache_dir) / avatar_fingerprint(avatar)[:32]
    files = OnnxFiles(generator=folder / GENERATOR_FILE, sr=folder / SR_FILE)
    if files.generator.is_file() and files.sr.is_file():
        return files
    return export_avatar(avatar, folder)
