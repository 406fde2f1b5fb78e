"""The demo avatar: the mannequin (avatar/mannequin.py), shipped prebuilt in `avatar/data/demo_avatar/`.

`--avatar demo` loads the shipped directory as is: no build and no face model needed, so a fresh
clone runs `splatcam demo` right after installing. `splatcam make-demo-avatar` rebuilds it (from
the ICT face model, about two minutes on two CPU cores); after a change to the builder, bump
MANNEQUIN_VERSION, rebuild into the shipped directory and commit it. Should the shipped avatar
be of another version than this code builds, `ensure_demo_avatar()` builds a current one into the
user cache instead and uses that.

A rebuild reproduces the shipped avatar within floating-point noise, not bit for bit: across CPUs
(Intel / AMD, vector widths) and thread counts, reductions round differently and thousands of
Adam steps carry the differences into the fitted weights. tests/test_mannequin.py states the
tolerances. Saving writes a temporary directory beside the target and renames it into place:
Ctrl+C at any point leaves the previous avatar or nothing, never a half-written one.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from avatar.checkpoint import META_FILE, CheckpointError, load_avatar, save_avatar
from avatar.mannequin import MANNEQUIN_VERSION, MannequinSpec, build_mannequin
from core.paths import user_cache_dir

logger = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "data" / "demo_avatar"
DEMO_DIR_NAME = "demo_avatar"


def cached_demo_avatar_dir() -> Path:
    """Where a demo avatar is built when the shipped one is stale: `<user cache>/demo_avatar`."""
    return user_cache_dir() / DEMO_DIR_NAME


def demo_avatar_problem(directory: str | os.PathLike) -> str | None:
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
    return None


def build_demo_avatar(directory: str | os.PathLike, progress: bool = True) -> Path:
    """Build the mannequin (needs the face model) and write it to `directory`."""
    target = Path(directory)
    logger.info("building the demo avatar in %s; about two minutes on two CPU cores", target)
    build = build_mannequin(MannequinSpec(), progress=progress)
    save_avatar(build.avatar, target)
    logger.info("demo avatar built in %.0f s: %s", build.seconds, target)
    return target


def ensure_demo_avatar(progress: bool = True) -> Path:
    """The directory `--avatar demo` means: the shipped avatar when current, else one built into
    the user cache (module docstring)."""
    shipped_problem = demo_avatar_problem(SHIPPED_DIR)
    if shipped_problem is None:
        return SHIPPED_DIR
    cached = cached_demo_avatar_dir()
    if demo_avatar_problem(cached) is None:
        return cached
    logger.warning("the shipped demo avatar is %s; building a current one into %s", shipped_problem, cached)
    return build_demo_avatar(cached, progress)
