"""ONNX Runtime backend: the avatar's exported graphs (export/onnx_export.py, cached per avatar).

Tensors go in and out through IO binding: inputs are bound at the torch tensors' addresses
and outputs are torch tensors ONNX Runtime writes into, on the CPU and on CUDA alike, so no
host copy is made on a GPU and no extra numpy conversion on the CPU. Outputs are fresh tensors
each call so a caller may keep frame t while frame t+1 is generated.

On CUDA, ONNX Runtime runs on torch's current stream of creation time (`user_compute_stream`);
a call made while another torch stream is current first makes that stream's work visible to
it. ONNX Runtime synchronises its stream at the end of a run, so outputs are ready on return.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avatar.checkpoint import Avatar
from export.onnx_export import GENERATOR_INPUTS, GENERATOR_OUTPUTS, SR_INPUT, SR_OUTPUT, cached_onnx
from runtime.inference.base import BackendBase

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


def onnxruntime_status(device: torch.device | str) -> tuple[bool, str]:
    """(usable, why not) on `device`."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False, "onnxruntime is not installed (pip install onnxruntime, or onnxruntime-gpu for CUDA)"
    wanted = CUDA_PROVIDER if torch.device(device).type == "cuda" else CPU_PROVIDER
    if wanted not in ort.get_available_providers():
        return False, (f"this onnxruntime build has no {wanted} (has {', '.join(ort.get_available_providers())}; "
                       "pip install onnxruntime-gpu)")
    return True, ""


class OnnxRuntimeBackend(BackendBase):
    name = "onnxruntime"

    def __init__(self, avatar: Avatar, device: torch.device | str = "cpu", cache_dir: Path | None = None) -> None:
        import onnxruntime as ort

        super().__init__(avatar, device)
        files = cached_onnx(avatar, None if cache_dir is None else Path(cache_dir) / "onnx")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()
        # Worker threads sleep instead of spinning between ops: the live loop tracks, captures
        # and encodes on the same cores, and spinning workers then starve them (measured on 2
        # busy cores: tiny avatar generator + SR 27-61 ms per frame without spinning, 134-140 ms with).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.device.type == "cuda":
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            self.device = torch.device("cuda", index)
            self._stream = torch.cuda.current_stream(self.device)
            providers = [(CUDA_PROVIDER, {"device_id": index, "user_compute_stream": str(self._stream.cuda_stream)}),
                         CPU_PROVIDER]
            self._bind_device = ("cuda", index)
        else:
            self._stream = None
            providers = [CPU_PROVIDER]
            self._bind_device = ("cpu", 0)
        self.generator = ort.InferenceSession(str(files.generator), options, providers=providers)
        self.sr = ort.InferenceSession(str(files.sr), options, providers=providers)
        self._sr_factor = avatar.sr.factor
        n, c = self.num_gaussians, self.channels
        self._generator_shapes = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,),
                                  "features": (n, c)}

    def _run(self, session, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> None:
        if self._stream is not None:
            current = torch.cuda.current_stream(self.device)
            if current != self._stream:
                self._stream.wait_stream(current)
        binding = session.io_binding()
        kind, index = self._bind_device
        for name, t in inputs.items():
            binding.bind_input(name, kind, index, np.float32, tuple(t.shape), t.data_ptr())
        for name, t in outputs.items():
            binding.bind_output(name, kind, index, np.float32, tuple(t.shape), t.data_ptr())
        session.run_with_iobinding(binding)

    def _generate(self, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = {name: torch.empty(self._generator_shapes[name], device=self.device) for name in GENERATOR_OUTPUTS}
        self._run(self.generator, {GENERATOR_INPUTS[0]: expression, GENERATOR_INPUTS[1]: pose}, outputs)
        return tuple(outputs[name] for name in GENERATOR_OUTPUTS)

    def _upsample(self, image: torch.Tensor) -> torch.Tensor:
        _, _, h, w = image.shape
        out = torch.empty(1, 3, self._sr_factor * h, self._sr_factor * w, device=self.device)
        self._run(self.sr, {SR_INPUT: image}, {SR_OUTPUT: out})
        return out
