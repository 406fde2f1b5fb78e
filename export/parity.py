"""Parity of exported graphs (ONNX Runtime, TensorRT) against the PyTorch avatar.

Random inputs drawn the way the live loop feeds them: θ uniform in [0, 1] per blendshape, β a
rotation of up to ~0.5 rad plus a translation around the avatar's anchor, and feature images
with values spread over the range a 32-channel render has (background 1, features about ±1).
The reference is the avatar's own PyTorch modules in float32 on the same device.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from avatar.checkpoint import Avatar
from export.onnx_export import GENERATOR_INPUTS, GENERATOR_OUTPUTS, SR_INPUT, OnnxFiles
from tracking.params import N_EXPRESSION

GeneratorFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]
UpsampleFn = Callable[[torch.Tensor], torch.Tensor]  # (1, C, H, W) -> (1, 3, fH, fW)

ONNX_TOLERANCE = 1e-4  # fp32 ONNX Runtime vs PyTorch (issue 5)
TENSORRT_TOLERANCE = 1e-2  # fp16 TensorRT engines vs PyTorch (issue 5)


@dataclass(frozen=True)
class ParityReport:
    """Max abs error over all trials, per generator output and for the SR image."""

    generator: dict[str, float]
    sr: float
    trials: int
    tolerance: float
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        return max([self.sr, *self.generator.values()])

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance

    def lines(self) -> list[str]:
        rows = [f"  {name:<10} max abs error {err:.3g}" for name, err in self.generator.items()]
        rows.append(f"  {'sr image':<10} max abs error {self.sr:.3g}")
        verdict = "ok" if self.ok else "FAILED"
        return [f"parity over {self.trials} random inputs (tolerance {self.tolerance:g}): {verdict}", *rows]

    def to_dict(self) -> dict:
        return {"generator": self.generator, "sr": self.sr, "trials": self.trials,
                "tolerance": self.tolerance, "max_error": self.max_error, "ok": self.ok, **self.extra}


def random_inputs(avatar: Avatar, generator: torch.Generator, sr_size: tuple[int, int] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """θ (53,), β (6,) and a (1, C, H, W) feature image, float32 on the CPU."""
    theta = torch.rand(N_EXPRESSION, generator=generator)
    rotation = 0.3 * torch.randn(3, generator=generator)
    translation = avatar.anchor_translation.detach().cpu().float() + 0.05 * torch.randn(3, generator=generator)
    height, width = sr_size or (avatar.camera.height, avatar.camera.width)
    image = 1.0 + 0.7 * torch.randn(1, avatar.config.color_channels, height, width, generator=generator)
    return theta, torch.cat([rotation, translation]), image


def check_parity(avatar: Avatar, generate: GeneratorFn, upsample: UpsampleFn, device: torch.device | str = "cpu",
                 trials: int = 3, seed: int = 0, tolerance: float = ONNX_TOLERANCE,
                 sr_size: tuple[int, int] | None = None) -> ParityReport:
    """Compare `generate` / `upsample` (taking and returning tensors on `device`) with PyTorch."""
    device = torch.device(device)
    model = copy.deepcopy(avatar.model).to(device).eval()
    sr = copy.deepcopy(avatar.sr).to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    errors = dict.fromkeys(GENERATOR_OUTPUTS, 0.0)
    sr_error = 0.0
    with torch.no_grad():
        for _ in range(trials):
            theta, pose, image = (t.to(device) for t in random_inputs(avatar, gen, sr_size))
            ref = model.forward_tensors(theta, pose)
            got = generate(theta, pose)
            for name, r, g in zip(GENERATOR_OUTPUTS, ref, got):
                if tuple(g.shape) != tuple(r.shape):
                    raise ValueError(f"{name}: shape {tuple(g.shape)}, PyTorch gives {tuple(r.shape)}")
                errors[name] = max(errors[name], float((g.float() - r).abs().max()))
            ref_rgb, got_rgb = sr(image), upsample(image)
            if tuple(got_rgb.shape) != tuple(ref_rgb.shape):
                raise ValueError(f"sr: shape {tuple(got_rgb.shape)}, PyTorch gives {tuple(ref_rgb.shape)}")
            sr_error = max(sr_error, float((got_rgb.float() - ref_rgb).abs().max()))
    return ParityReport(generator=errors, sr=sr_error, trials=trials, tolerance=tolerance)


def onnx_parity(avatar: Avatar, files: OnnxFiles, trials: int = 3, seed: int = 0,
                sr_size: tuple[int, int] | None = None) -> ParityReport:
    """ONNX Runtime (CPU provider, fp32) against PyTorch on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    generator = ort.InferenceSession(str(files.generator), options, providers=["CPUExecutionProvider"])
    sr = ort.InferenceSession(str(files.sr), options, providers=["CPUExecutionProvider"])

    def generate(theta: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feeds = {GENERATOR_INPUTS[0]: theta.numpy(), GENERATOR_INPUTS[1]: pose.numpy()}
        return tuple(torch.from_numpy(np.asarray(o)) for o in generator.run(list(GENERATOR_OUTPUTS), feeds))

    def upsample(image: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sr.run(None, {SR_INPUT: image.numpy()})[0])

    return check_parity(avatar, generate, upsample, "cpu", trials, seed, ONNX_TOLERANCE, sr_size)


def tensorrt_parity(avatar: Avatar, engines, trials: int = 3, seed: int = 0) -> ParityReport:
    """TensorRT fp16 engines (an export.tensorrt_engine.TensorRTAvatar) against PyTorch on its GPU."""
    report = check_parity(avatar, engines.generate, engines.upsample, engines.device, trials, seed,
                          TENSORRT_TOLERANCE)
    return replace(report, extra={"generator_engine": str(engines.generator_path), "sr_engine": str(engines.sr_path)})
