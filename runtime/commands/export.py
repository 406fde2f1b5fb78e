"""`splatcam export`: an avatar's generator and SR CNN as ONNX files (or TensorRT engines), checked.

    splatcam export --avatar DIR|demo --backend onnx|tensorrt [--out DIR] [--trials N]

Writes `generator.onnx` and `sr.onnx` (export/onnx_export.py; the SR graph takes any render
size), with `--backend tensorrt` also `generator.engine` and `sr.engine` (FP16, for this GPU
and TensorRT version only), plus `export.json` with the parity numbers. Parity compares the
exported graphs with PyTorch on random expressions, poses and feature images: max abs error
at most 1e-4 for ONNX Runtime in fp32 and 1e-2 for TensorRT in fp16, else the export fails.
Everything is written to a temporary directory first and renamed into place at the end, so a
failed export leaves no partial output.
"""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = Path("out") / "export"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export an avatar to ONNX / TensorRT and check parity with PyTorch",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--avatar", required=True, help="avatar directory, or 'demo' for the built-in mannequin")
    p.add_argument("--backend", choices=["onnx", "tensorrt"], default="onnx",
                   help="onnx: ONNX files checked with ONNX Runtime; tensorrt: also FP16 engines (CUDA + TensorRT)")
    p.add_argument("--out", default=None, help=f"output directory (default {DEFAULT_OUT}/AVATAR_NAME)")
    p.add_argument("--trials", type=int, default=3, help="random inputs for the parity check (default 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from avatar.checkpoint import load_avatar
    from core.atomic import atomic_directory
    from core.errors import UserError
    from export.onnx_export import OPSET, avatar_fingerprint, export_avatar
    from export.parity import onnx_parity
    from runtime.pipeline import resolve_avatar_dir

    if args.trials < 1:
        raise UserError(f"--trials must be at least 1, got {args.trials}")
    if args.backend == "tensorrt":
        from export.tensorrt_engine import tensorrt_status
        ok, why = tensorrt_status()
        if not ok:  # before anything is written
            raise UserError(why)
    avatar_dir = resolve_avatar_dir(args.avatar)
    avatar = load_avatar(avatar_dir)
    out = Path(args.out) if args.out else DEFAULT_OUT / avatar_dir.resolve().name
    if out.exists() and not (out.is_dir() and ((out / "export.json").is_file() or not any(out.iterdir()))):
        raise UserError(f"{out}: exists and is not an export directory; refusing to overwrite it")

    with atomic_directory(out) as tmp:  # a failed parity check leaves no export behind
        files = export_avatar(avatar, tmp)
        print(f"exported {files.generator.name} ({avatar.model.num_gaussians} Gaussians) and {files.sr.name} "
              f"(opset {OPSET})")
        reports = {"onnxruntime": onnx_parity(avatar, files, trials=args.trials)}
        if args.backend == "tensorrt":
            reports["tensorrt"] = _tensorrt(avatar, files, tmp, args.trials)
        for name, report in reports.items():
            print(f"{name} " + "\n".join(report.lines()))
        failed = [name for name, report in reports.items() if not report.ok]
        if failed:
            raise UserError(f"parity check failed for {', '.join(failed)} (numbers above); nothing written")
        summary = {"avatar": str(avatar_dir), "avatar_sha256": avatar_fingerprint(avatar), "opset": OPSET,
                   "parity": {name: report.to_dict() for name, report in reports.items()}}
        (tmp / "export.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
    return 0


def _tensorrt(avatar, files, folder: Path, trials: int):
    """Build (or take from the cache) both engines, copy them beside the ONNX files, check parity."""
    import shutil

    from export.parity import tensorrt_parity
    from export.tensorrt_engine import TensorRTAvatar

    engines = TensorRTAvatar(avatar, files)
    shutil.copyfile(engines.generator_path, folder / "generator.engine")
    shutil.copyfile(engines.sr_path, folder / "sr.engine")
    return tensorrt_parity(avatar, engines, trials=trials)
