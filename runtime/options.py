"""Command-line options shared by several commands, so each is spelled and checked one way.

Two different "backends" exist: the rasterizer (`--raster cpu|gsplat`: render, reenact, train,
evaluate, live, demo, bench) and the inference backend for the generator and SR CNN
(`--backend torch|compile|onnxruntime|tensorrt|auto`: live, demo, bench). Commands that once
called the rasterizer `--backend` still accept that spelling, with a note.
"""
from __future__ import annotations

import argparse
import logging

from avatar.raster import BACKENDS as RASTERS

logger = logging.getLogger(__name__)


def add_raster_argument(p: argparse.ArgumentParser, default: str | None = "cpu") -> None:
    """`--raster`, plus the old `--backend` spelling for the same choice (hidden from --help)."""
    p.add_argument("--raster", choices=RASTERS, default=None,
                   help=f"rasterizer: cpu (any machine) or gsplat (CUDA) (default {default or 'gsplat with CUDA, else cpu'})")
    p.add_argument("--backend", dest="raster_old_spelling", choices=RASTERS, default=None, help=argparse.SUPPRESS)
    p.set_defaults(raster_default=default)


def raster_choice(args: argparse.Namespace) -> str | None:
    """The rasterizer asked for (None: the command's automatic choice)."""
    old = getattr(args, "raster_old_spelling", None)
    if old is not None:
        if args.raster is not None and args.raster != old:
            raise ValueError(f"--raster {args.raster} and --backend {old} disagree; use --raster alone")
        logger.warning("--backend %s means the rasterizer here and is deprecated: use --raster %s", old, old)
        return old
    return args.raster if args.raster is not None else args.raster_default
