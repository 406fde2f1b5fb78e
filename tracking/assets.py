"""Where the project finds its data files (DESIGN.md: the face model lookup order)."""
from __future__ import annotations

import os
from pathlib import Path

from core.paths import user_cache_dir

FACE_MODEL_FILE = "ict_face_model.npz"
REPO_ROOT = Path(__file__).resolve().parents[1]


class AssetNotFoundError(FileNotFoundError):
    """An asset is nowhere on the lookup path; the message says where we looked."""


def shared_data_dir() -> Path:
    return REPO_ROOT.parent / "shared" / "data"


def search_dirs(explicit: str | os.PathLike | None = None) -> list[Path]:
    dirs: list[Path] = []
    if explicit is not None:
        dirs.append(Path(explicit))
    if os.environ.get("SPLATCAM_ASSETS"):
        dirs.append(Path(os.environ["SPLATCAM_ASSETS"]))
    dirs += [user_cache_dir(), shared_data_dir()]
    return dirs


def find_asset(name: str, explicit: str | os.PathLike | None = None) -> Path:
    """First existing `name` on the lookup path; `explicit` may be the file itself or a folder."""
    if explicit is not None and Path(explicit).is_file():
        return Path(explicit)
    looked = []
    for d in search_dirs(explicit):
        candidate = d / name
        looked.append(str(candidate))
        if candidate.is_file():
            return candidate
    raise AssetNotFoundError(f"{name} not found (looked in: {', '.join(looked)})")
