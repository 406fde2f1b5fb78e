"""The demo avatar: the mannequin (avatar/mannequin.py), built once into the user cache.

`ensure_demo_avatar()` returns `demo_avatar_dir()` after (re)building it when it is missing, is
not a loadable avatar, was built by another mannequin version, or from another face-model file.
The avatar is built in memory and written by `save_avatar`, which writes a temporary directory
beside the target and renames it into place: Ctrl+C at any point leaves the previous avatar or
nothing, never a half-written one.
"""
from __future__ import annotations

import os
from pathlib import Path

from avatar.checkpoint import META_FILE, CheckpointError, load_avatar, save_avatar
from avatar.mannequin import MANNEQUIN_VERSION, MannequinSpec, build_mannequin
from tracking.assets import user_cache_dir
from tracking.face_model import load_face_model_data

DEMO_DIR_NAME = "demo_avatar"


def demo_avatar_dir() -> Path:
    """Where the demo avatar lives: `<user cache>/demo_avatar` (`SPLATCAM_CACHE` overrides the cache)."""
    return user_cache_dir() / DEMO_DIR_NAME


def demo_avatar_problem(directory: str | os.PathLike, face_model_checksum: str) -> str | None:
    """Why `directory` is not a current demo avatar, or None when it is."""
    root = Path(directory)
    if not (root / META_FILE).is_file():
        return "not built yet"
    try:
        metadata = load_avatar(root).metadata
    except CheckpointError as e:
        return f"not loadable ({e})"
    found = metadata.training.get("mannequin_version")
    if found != MANNEQUIN_VERSION:
        return f"built by mannequin version {found}, this splatcam builds version {MANNEQUIN_VERSION}"
    if metadata.face_model_checksum != face_model_checksum:
        return "built from another face model file"
    return None


def ensure_demo_avatar(progress: bool = True, directory: str | os.PathLike | None = None,
                       force: bool = False) -> Path:
    """The demo avatar directory, built first if missing or stale (see the module docstring)."""
    target = Path(directory) if directory is not None else demo_avatar_dir()
    data = load_face_model_data()
    problem = "rebuild requested" if force else demo_avatar_problem(target, data.checksum)
    if problem is None:
        return target
    if progress:
        print(f"building the demo avatar in {target} ({problem}); this takes a few minutes once")
    build = build_mannequin(MannequinSpec(), data=data, progress=progress)
    save_avatar(build.avatar, target)
    if progress:
        print(f"demo avatar ready in {build.seconds:.0f} s: {target}")
    return target
