"""Command-line options shared by several commands, so each is spelled and checked one way.

Two different "backends" exist: the rasterizer (`--raster cpu|gsplat`: render, reenact, live,
bench) and the inference backend for the generator and SR CNN (`--backend
auto|torch|compile|onnxruntime|tensorrt`: live, demo, bench). Commands that once called the
rasterizer `--backend` (render, reenact) still accept that spelling, with a note.
"""
from __future__ import annotations

import argparse
import logging

# The choices, spelled here so that registering the commands at start-up does not load the
# rasterizer or the inference backends (ONNX, exporters); tests/test_options.py holds them equal
# to avatar.raster's and runtime.inference's.
RASTERS = ("cpu", "gsplat")
INFERENCE_BACKENDS = ("auto", "torch", "compile", "onnxruntime", "tensorrt")
NEUTRALS = ("calmest", "first-second")  # how reenact finds the driver's neutral face (runtime/offline.py)

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


def add_overlap_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overlap", action=argparse.BooleanOptionalAction, default=None,
                   help="render frame t in a worker thread while tracking (and, on a CPU, generating) frame t+1: "
                        "more frames per second for one more frame of latency (default: on with CUDA)")
