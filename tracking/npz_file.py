"""Writing .npz files that are either complete or absent: a temporary file beside the target,
renamed into place only once written (an interrupt or a full disk leaves the old file, or none)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.atomic import atomic_file


def write_npz_atomic(path: str | os.PathLike, what: str, **arrays) -> Path:
    """Save `arrays` to `path` (which must end in .npz; `what` names the file in the error)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: {what} file must end in .npz")
    with atomic_file(path, suffix=".npz") as tmp:  # np.savez appends .npz to any other name
        np.savez(tmp, **arrays)
    return path
