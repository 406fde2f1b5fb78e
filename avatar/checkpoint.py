"""Trained-avatar files: one directory with `avatar.safetensors` and `avatar.json`.

`avatar.safetensors` holds every tensor: the head model (`model.*`), the SR CNN (`sr.*`), the
render camera (`camera.K`, `camera.viewmat`) and `anchor_translation`. `avatar.json` holds the
format name and version, the model config, the coefficient contract version, the face-model
checksum, the camera size, the training video's frame in the camera's pixels where the training
crop reached past it (avatar.video_frame; absent otherwise) and a free-form training summary.
Nothing is ever unpickled: a file from someone else can at worst fail to load, never run code.
Every way a directory can be unusable raises `CheckpointError` with a one-line message.

Saving writes a hidden temporary directory beside the target and renames it into place, so an
interrupted save (Ctrl+C included) leaves the previous avatar, or nothing, never half a file.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from avatar.camera import Camera
from avatar.config import ModelConfig
from avatar.head_model import GaussianHeadModel
from avatar.super_resolution import SuperResolution
from avatar.video_frame import Rectangle, rectangle_coverage
from core.atomic import atomic_directory
from tracking.params import CONTRACT_VERSION

FORMAT_NAME = "splatcam-avatar"
FORMAT_VERSION = 1
TENSORS_FILE = "avatar.safetensors"
META_FILE = "avatar.json"
# Leading bytes of pickle (protocol >= 2) and of torch.save's zip container.
PICKLE_MAGICS = (b"\x80", b"PK\x03\x04")


class CheckpointError(ValueError):
    """An avatar directory that cannot be loaded or written; the message is one line."""


@dataclass
class AvatarMetadata:
    contract_version: int = CONTRACT_VERSION
    face_model_checksum: str | None = None  # sha256 of the ict_face_model.npz used to track/train
    training: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable summary
    format_version: int = FORMAT_VERSION
    # The training video's frame (x0, y0, x1, y1) in `camera` pixels; renders are cut to it. None:
    # the video filled the whole view.
    frame: Rectangle | None = None


@dataclass
class Avatar:
    """A trained avatar: generator, SR CNN and the view it was trained for.

    `camera` renders the 32-channel image at the low resolution; the SR output has the same view
    at SR_FACTOR times the size. `anchor_translation` (3,) is the mean head translation of the
    training frames: where in front of `camera` the head belongs.
    """

    model: GaussianHeadModel
    sr: SuperResolution
    camera: Camera
    anchor_translation: torch.Tensor
    metadata: AvatarMetadata = field(default_factory=AvatarMetadata)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def frame_window(self, width: int) -> torch.Tensor | None:
        """(H, W, 1) share of each pixel of an output image `width` wide (the camera's view at any
        scale) inside the training video's frame, for video_frame.cut_to_frame; None: all of it."""
        rect = self.metadata.frame
        if rect is None:
            return None
        s = width / self.camera.width
        height = round(self.camera.height * s)
        return torch.from_numpy(rectangle_coverage(tuple(v * s for v in rect), width, height))[..., None]

    def to(self, device: str | torch.device) -> "Avatar":
        self.model.to(device)
        self.sr.to(device)
        self.camera = self.camera.to(device)
        self.anchor_translation = self.anchor_translation.to(device)
        return self


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _tensors(avatar: Avatar) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v for k, v in avatar.model.state_dict().items()}
    out.update({f"sr.{k}": v for k, v in avatar.sr.state_dict().items()})
    out["camera.K"] = avatar.camera.K
    out["camera.viewmat"] = avatar.camera.viewmat
    out["anchor_translation"] = avatar.anchor_translation
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}


def _meta(avatar: Avatar) -> str:
    m = avatar.metadata
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_config": avatar.config.to_dict(),
        "contract_version": m.contract_version,
        "face_model_checksum": m.face_model_checksum,
        "camera": {"width": avatar.camera.width, "height": avatar.camera.height},
        "training": m.training,
    }
    if m.frame is not None:
        meta["frame"] = [float(v) for v in m.frame]
    try:
        return json.dumps(meta, indent=2, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"avatar metadata is not plain JSON: {_one_line(e)}") from None


def save_avatar(avatar: Avatar, directory: str | os.PathLike) -> Path:
    """Write `avatar` to `directory` atomically, replacing an avatar already there."""
    target = Path(directory)
    if target.exists() and not (target.is_dir() and ((target / META_FILE).is_file() or not any(target.iterdir()))):
        raise CheckpointError(f"{target}: exists and is not an avatar directory; refusing to overwrite it")
    meta = _meta(avatar)
    tensors = _tensors(avatar)
    with atomic_directory(target) as tmp:
        save_file(tensors, str(tmp / TENSORS_FILE), metadata={"format": FORMAT_NAME})
        (tmp / TENSORS_FILE).chmod(0o644)  # safetensors writes it owner-only
        (tmp / META_FILE).write_text(meta + "\n")
    return target


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not readable JSON ({_one_line(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not a splatcam avatar description (no \"format\": \"{FORMAT_NAME}\")")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise CheckpointError(f"{path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer splatcam (avatar format {version}, this one reads "
                              f"up to {FORMAT_VERSION}); upgrade splatcam")
    contract = meta.get("contract_version")
    if contract != CONTRACT_VERSION:
        raise CheckpointError(f"{path}: avatar expects coefficient contract {contract!r}, this splatcam "
                              f"speaks {CONTRACT_VERSION}")
    camera = meta.get("camera")
    if not (isinstance(camera, dict) and all(type(camera.get(k)) is int and camera[k] > 0
                                             for k in ("width", "height"))):
        raise CheckpointError(f"{path}: \"camera\" must hold positive integer width and height")
    checksum = meta.get("face_model_checksum")
    if checksum is not None and not isinstance(checksum, str):
        raise CheckpointError(f"{path}: face_model_checksum must be a string or null")
    if not isinstance(meta.get("training", {}), dict):
        raise CheckpointError(f"{path}: \"training\" must be an object")
    frame = meta.get("frame")
    if frame is not None and not (isinstance(frame, list) and len(frame) == 4
                                  and all(type(v) in (int, float) and math.isfinite(v) for v in frame)
                                  and frame[0] < frame[2] and frame[1] < frame[3]):
        raise CheckpointError(f"{path}: \"frame\" must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
    return meta


def _read_tensors(path: Path, config: ModelConfig, meta: dict[str, Any]) -> Avatar:
    """An avatar built from `config` and filled from `path`, after checking keys and shapes."""
    with open(path, "rb") as f:
        head = f.read(4)
    if any(head.startswith(m) for m in PICKLE_MAGICS):
        raise CheckpointError(f"{path}: is a pickle / torch.save file, not safetensors; "
                              "splatcam never unpickles avatars")
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
            positions = shapes.get("model.positions")
            if positions is None or len(positions) != 2:
                raise CheckpointError(f"{path}: not a splatcam avatar (no model.positions tensor)")
            camera = Camera(K=torch.eye(3), viewmat=torch.eye(4),
                            width=meta["camera"]["width"], height=meta["camera"]["height"])
            avatar = Avatar(GaussianHeadModel(config, positions[0]), SuperResolution.from_config(config),
                            camera, torch.zeros(3))
            expected = {k: tuple(v.shape) for k, v in _tensors(avatar).items()}
            missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
            if missing or unexpected:
                raise CheckpointError(f"{path}: tensors do not match the avatar config "
                                      f"(missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                                      f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''})")
            for k, shape in expected.items():
                if shapes[k] != shape:
                    raise CheckpointError(f"{path}: tensor {k} has shape {list(shapes[k])}, "
                                          f"the config needs {list(shape)}")
                if dtypes[k] != "F32":
                    raise CheckpointError(f"{path}: tensor {k} is {dtypes[k]}, expected F32")
            tensors = {k: f.get_tensor(k) for k in expected}
    except CheckpointError:
        raise
    except Exception as e:  # safetensors reports damage with several exception types
        raise CheckpointError(f"{path}: not a readable safetensors file ({_one_line(e)})") from None
    avatar.model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    avatar.sr.load_state_dict({k[len("sr."):]: v for k, v in tensors.items() if k.startswith("sr.")})
    avatar.camera = Camera(K=tensors["camera.K"], viewmat=tensors["camera.viewmat"],
                           width=camera.width, height=camera.height)
    avatar.anchor_translation = tensors["anchor_translation"]
    return avatar


def load_avatar(directory: str | os.PathLike) -> Avatar:
    """Load an avatar directory (on the CPU); any problem raises CheckpointError."""
    root = Path(directory)
    if not root.is_dir():
        raise CheckpointError(f"{root}: no such avatar directory")
    for name in (META_FILE, TENSORS_FILE):
        if not (root / name).is_file():
            raise CheckpointError(f"{root}: missing {name}; not a complete avatar directory")
    meta = _read_meta(root / META_FILE)
    try:
        config = ModelConfig.from_dict(meta.get("model_config"))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{root / META_FILE}: bad model_config: {_one_line(e)}") from None
    avatar = _read_tensors(root / TENSORS_FILE, config, meta)
    avatar.metadata = AvatarMetadata(contract_version=meta["contract_version"],
                                     face_model_checksum=meta.get("face_model_checksum"),
                                     training=meta.get("training", {}), format_version=meta["format_version"],
                                     frame=None if meta.get("frame") is None else tuple(meta["frame"]))
    return avatar
