"""Where splatcam keeps what it builds or downloads once per machine, and how it names files' contents."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def user_cache_dir() -> Path:
    """`SPLATCAM_CACHE`, else ~/.cache/splatcam (face model, demo avatar, ONNX files, engines)."""
    return Path(os.environ.get("SPLATCAM_CACHE", Path.home() / ".cache" / "splatcam"))


def file_checksum(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, hex (keys caches and checks downloads)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
