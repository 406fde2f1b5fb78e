"""PyTorch backends: eager (the reference) and torch.compile (Inductor).

Both run private copies of the avatar's modules on their device, so creating a backend never
moves or changes the caller's avatar.

torch.compile on the CPU generates C++ and needs a compiler (g++ here); on CUDA it needs
Triton. The first call compiles (tens of seconds on two cores, less once Inductor's on-disk
cache is warm), so the backend compiles at creation with inputs of the avatar's render size:
the live loop's first frame is then as fast as the rest.
"""
from __future__ import annotations

import copy
import importlib.util
import os
import shutil

import torch

from avatar.checkpoint import Avatar
from export.onnx_export import GeneratorGraph
from runtime.inference.base import BackendBase
from tracking.params import N_EXPRESSION


class EagerBackend(BackendBase):
    name = "torch"

    def __init__(self, avatar: Avatar, device: torch.device | str = "cpu") -> None:
        super().__init__(avatar, device)
        self.generator = GeneratorGraph(copy.deepcopy(avatar.model)).to(self.device).eval()
        self.sr = copy.deepcopy(avatar.sr).to(self.device).eval()
        for p in list(self.generator.parameters()) + list(self.sr.parameters()):
            p.requires_grad_(False)
        self._run_generator = self.generator
        self._run_sr = self.sr

    def _generate(self, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return self._run_generator(expression, pose)

    def _upsample(self, image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._run_sr(image)


def compile_status(device: torch.device | str) -> tuple[bool, str]:
    """(usable, why not) for torch.compile's default Inductor backend on `device`."""
    if torch.device(device).type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return False, "torch.compile on CUDA needs Triton (pip install triton)"
        return True, ""
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None and shutil.which("clang++") is None:
        return False, f"torch.compile on the CPU needs a C++ compiler ({compiler} not found; install g++)"
    return True, ""


class CompileBackend(EagerBackend):
    name = "compile"

    def __init__(self, avatar: Avatar, device: torch.device | str = "cpu") -> None:
        super().__init__(avatar, device)
        self._run_generator = torch.compile(self.generator)
        self._run_sr = torch.compile(self.sr)
        # Compile now, at the shapes and in the inference mode the live loop will use (the
        # compiled graph is guarded on both: anything else compiles again in the first frame).
        cam = avatar.camera
        with torch.inference_mode():
            warm_pose = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0], device=self.device)
            self._generate(torch.zeros(N_EXPRESSION, device=self.device), warm_pose)
            self._upsample(torch.ones(1, self.channels, cam.height, cam.width, device=self.device))
