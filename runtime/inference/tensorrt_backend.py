"""TensorRT backend: FP16 engines built from the cached ONNX export (export/tensorrt_engine.py)."""
from __future__ import annotations

from pathlib import Path

import torch

from avatar.checkpoint import Avatar
from export.onnx_export import cached_onnx
from export.tensorrt_engine import TensorRTAvatar, TensorRTUnavailable
from runtime.inference.base import BackendBase


class TensorRTBackend(BackendBase):
    name = "tensorrt"

    def __init__(self, avatar: Avatar, device: torch.device | str = "cuda", cache_dir: Path | None = None) -> None:
        super().__init__(avatar, device)
        if self.device.type != "cuda":
            raise TensorRTUnavailable(f"TensorRT runs on a CUDA device, not {self.device}")
        files = cached_onnx(avatar, None if cache_dir is None else Path(cache_dir) / "onnx")
        self.engines = TensorRTAvatar(avatar, files, None if cache_dir is None else Path(cache_dir) / "tensorrt",
                                      self.device)

    def _generate(self, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.engines.generate(expression, pose)

    def _upsample(self, image: torch.Tensor) -> torch.Tensor:
        return self.engines.upsample(image)
