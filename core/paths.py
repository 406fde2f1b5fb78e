"""Where splatcam keeps what it builds or downloads once per machine."""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """`SPLATCAM_CACHE`, else ~/.cache/splatcam (face model, demo avatar, ONNX files, engines)."""
    return Path(os.environ.get("SPLATCAM_CACHE", Path.home() / ".cache" / "splatcam"))
