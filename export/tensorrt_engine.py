"""FP16 TensorRT engines built from the exported ONNX files, cached, run on torch CUDA tensors.

Building follows TensorRT's documented Python API: `trt.Builder` -> network from `trt.OnnxParser`
-> `BuilderConfig` with the FP16 flag (inputs and outputs stay float32; TensorRT picks fp16
kernels where it can) and an optimisation profile for the SR graph's dynamic height and width ->
`build_serialized_network`. TensorRT 11 removed the FP16 flag (strong typing only); there the
parser gets a float16 copy of the graph instead (export/onnx_fp16.py), same float32 I/O. An
engine only runs on the GPU model and TensorRT version it was built with, so the cache key is
(GPU name, TensorRT version, sha256 of the ONNX file, precision, shape profile); engines live
under the user cache (`~/.cache/splatcam/tensorrt/`). TensorRT builds, loads and runs on the
calling thread's current CUDA device, so every step is done under `torch.cuda.device(device)`.

Running: `execute_async_v3` on torch's current CUDA stream with every tensor address set to a
torch tensor's `data_ptr()`, so inputs come from and outputs go to torch CUDA memory without a
trip through the host, and the work is ordered with the surrounding torch kernels.

TensorRT is optional: without it every entry point raises `TensorRTUnavailable` with the install
hint. Nothing imports tensorrt at module import time.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch

from avatar.checkpoint import Avatar
from core.atomic import write_bytes
from core.paths import file_checksum, user_cache_dir
from export.onnx_export import GENERATOR_INPUTS, GENERATOR_OUTPUTS, SR_INPUT, SR_OUTPUT, ExportError, OnnxFiles
from export.onnx_fp16 import convert_to_float16

INSTALL_HINT = ("pip install tensorrt from NVIDIA's index: "
                "pip install --extra-index-url https://pypi.nvidia.com tensorrt; it needs an NVIDIA GPU and driver")
WORKSPACE_BYTES = 2 << 30
ENGINE_SUFFIX = ".engine"

ShapeProfile = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]  # name -> (min, opt, max)


class TensorRTUnavailable(ExportError):
    """TensorRT (or the CUDA GPU it needs) is missing; the message says how to get it."""


def import_tensorrt() -> Any:
    """The `tensorrt` module, or TensorRTUnavailable with the install hint."""
    try:
        import tensorrt as trt
    except ImportError:
        raise TensorRTUnavailable(f"TensorRT is not installed ({INSTALL_HINT})") from None
    return trt


def tensorrt_status() -> tuple[bool, str]:
    """(usable, why not): TensorRT importable and a CUDA device present."""
    try:
        import_tensorrt()
    except TensorRTUnavailable as e:
        return False, str(e)
    if not torch.cuda.is_available():
        return False, "TensorRT needs a CUDA GPU; torch sees none here"
    return True, ""


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; equal keys mean the cached engine can be reused."""

    gpu: str  # torch.cuda.get_device_name()
    tensorrt: str  # tensorrt.__version__
    onnx_sha256: str
    precision: str = "fp16"
    shapes: tuple = ()  # sorted (name, min, opt, max) of the optimisation profile

    def filename(self) -> str:
        digest = hashlib.sha256(repr((self.onnx_sha256, self.precision, self.shapes)).encode()).hexdigest()[:24]
        gpu = re.sub(r"[^A-Za-z0-9.]+", "_", self.gpu).strip("_") or "gpu"
        return f"{gpu}-trt{self.tensorrt}-{self.precision}-{digest}{ENGINE_SUFFIX}"


def engine_key(onnx_path: str | os.PathLike, gpu: str, tensorrt_version: str,
               shapes: ShapeProfile | None = None, precision: str = "fp16") -> EngineKey:
    profile = tuple(sorted((name, tuple(lo), tuple(opt), tuple(hi)) for name, (lo, opt, hi) in (shapes or {}).items()))
    return EngineKey(gpu=gpu, tensorrt=tensorrt_version, onnx_sha256=file_checksum(Path(onnx_path)),
                     precision=precision, shapes=profile)


def engine_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir) if cache_dir is not None else user_cache_dir() / "tensorrt"


def sr_shape_profile(avatar: Avatar, in_channels: int | None = None) -> ShapeProfile:
    """SR input shapes the engine must accept: from a quarter of the avatar's render size up to it.

    The live loop renders at the avatar's camera size, or smaller for a smaller output; larger
    than that would only cost engine memory (the 4x output of a 512² render is already 2048²).
    """
    c = in_channels or avatar.config.color_channels
    h, w = avatar.camera.height, avatar.camera.width
    low = (1, c, max(8, h // 4), max(8, w // 4))
    return {SR_INPUT: (low, (1, c, h, w), (1, c, h, w))}


def build_engine(onnx_path: str | os.PathLike, shapes: ShapeProfile | None = None, fp16: bool = True,
                 workspace_bytes: int = WORKSPACE_BYTES) -> bytes:
    """A serialized TensorRT engine for `onnx_path`."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch (the flag is gone); 8.x needs it for ONNX.
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    # TensorRT <= 10: a float32 graph plus the FP16 builder flag (weak typing). TensorRT 11
    # removed that flag: networks compute in their declared types, so parse a float16 copy.
    weakly_typed = hasattr(trt.BuilderFlag, "FP16")
    if fp16 and not weakly_typed:
        parsed = parser.parse(convert_to_float16(onnx.load(str(onnx_path))).SerializeToString())
    else:
        parsed = parser.parse_from_file(str(onnx_path))
    if not parsed:
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {' '.join(errors.split())}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16 and weakly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT could not build an engine from {onnx_path} (see its log above)")
    return bytes(serialized)


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
             trt.DataType.INT32: torch.int32, trt.DataType.BOOL: torch.bool}
    # Members that not every TensorRT version has (INT64 and BF16 came with 9/10).
    for name, torch_dtype in (("INT64", torch.int64), ("BF16", torch.bfloat16), ("INT8", torch.int8),
                              ("UINT8", torch.uint8)):
        if hasattr(trt.DataType, name):
            table[getattr(trt.DataType, name)] = torch_dtype
    if dtype not in table:
        raise ExportError(f"TensorRT engine has an input or output of type {dtype}, which splatcam cannot pass")
    return table[dtype]


class TensorRTEngine:
    """One deserialized engine with its execution context, called with torch CUDA tensors."""

    def __init__(self, serialized: bytes, device: torch.device | str = "cuda") -> None:
        trt = import_tensorrt()
        self.device = torch.device(device)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        with torch.cuda.device(self.device):
            self.engine = self._runtime.deserialize_cuda_engine(serialized)
            if self.engine is None:
                raise ExportError("TensorRT could not deserialize the engine (built for another GPU or version?)")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}

    def __call__(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Enqueue the engine on torch's current stream; outputs are fresh torch tensors.

        Fresh outputs (the caching allocator makes them cheap) let a caller keep frame t's
        Gaussians while frame t+1 is generated.
        """
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise ValueError(f"TensorRT engine needs inputs {sorted(missing)}")
        keep = []
        with torch.cuda.device(self.device):
            for name in self.inputs:
                t = inputs[name].to(self.device, self.dtypes[name]).contiguous()
                keep.append(t)
                # False (and a logged error) when the shape lies outside the engine's profile.
                if not self.context.set_input_shape(name, tuple(t.shape)):
                    raise ValueError(f"TensorRT engine input {name!r} cannot take shape {tuple(t.shape)}; "
                                     f"it accepts {self._accepted(name)}")
                self.context.set_tensor_address(name, t.data_ptr())
            outputs = {}
            for name in self.outputs:
                # Output shapes follow from the input shapes just set.
                shape = tuple(self.context.get_tensor_shape(name))
                out = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
                self.context.set_tensor_address(name, out.data_ptr())
                outputs[name] = out
            stream = torch.cuda.current_stream(self.device)
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
        # `keep` may hold copies made above; freeing them is stream-ordered by the caching allocator.
        del keep
        return outputs

    def _accepted(self, name: str) -> str:
        shape = tuple(self.engine.get_tensor_shape(name))  # -1 marks a dynamic dimension
        if -1 not in shape:
            return f"only {shape}"
        lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
        return f"shapes from {tuple(lo)} to {tuple(hi)}"


def load_or_build(onnx_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                  shapes: ShapeProfile | None = None, device: torch.device | str = "cuda"
                  ) -> tuple[TensorRTEngine, Path]:
    """The cached engine for `onnx_path` on this GPU and TensorRT version, built first if needed."""
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("TensorRT needs a CUDA GPU; torch sees none here")
    device = torch.device(device)
    key = engine_key(onnx_path, torch.cuda.get_device_name(device), trt.__version__, shapes)
    path = engine_cache_dir(cache_dir) / key.filename()
    if path.is_file():
        try:
            return TensorRTEngine(path.read_bytes(), device), path
        except ExportError:
            pass  # a damaged cache entry: rebuild it below
    with torch.cuda.device(device):
        serialized = build_engine(onnx_path, shapes)
    write_bytes(path, serialized)
    return TensorRTEngine(serialized, device), path


class TensorRTAvatar:
    """The avatar's generator and SR engines, taking and returning torch CUDA tensors."""

    def __init__(self, avatar: Avatar, files: OnnxFiles, cache_dir: str | os.PathLike | None = None,
                 device: torch.device | str = "cuda") -> None:
        self.device = torch.device(device)
        self.generator, self.generator_path = load_or_build(files.generator, cache_dir, None, self.device)
        self.sr, self.sr_path = load_or_build(files.sr, cache_dir, sr_shape_profile(avatar), self.device)

    def generate(self, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.generator(**{GENERATOR_INPUTS[0]: expression.reshape(-1), GENERATOR_INPUTS[1]: pose.reshape(-1)})
        return tuple(out[name] for name in GENERATOR_OUTPUTS)

    def upsample(self, image: torch.Tensor) -> torch.Tensor:
        """(1, C, H, W) -> (1, 3, fH, fW)."""
        return self.sr(**{SR_INPUT: image})[SR_OUTPUT]
