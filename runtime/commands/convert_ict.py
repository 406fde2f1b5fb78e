"""`splatcam convert-ict`: the original ICT-FaceKit release (OBJ files) to `ict_face_model.npz`.

    splatcam convert-ict ICT_FACEKIT_DIR [--out ict_face_model.npz] [--allow-partial]

ICT_FACEKIT_DIR is the release's `FaceXModel/` folder or the repository root holding it
(github.com/ICT-VGL/ICT-FaceKit). The default output is the user cache (~/.cache/splatcam/, or
$SPLATCAM_CACHE), where the asset lookup finds it. See tracking/convert_ict.py for the format.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("convert-ict", help="convert the ICT-FaceKit OBJ release into ict_face_model.npz",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("folder", metavar="ICT_FACEKIT_DIR", help="ICT-FaceKit FaceXModel/ folder (or the repository root)")
    p.add_argument("--out", default=None, help="output .npz (default: the user cache's ict_face_model.npz)")
    p.add_argument("--allow-partial", action="store_true",
                   help="convert a release with shape files missing; their modes are written as zeros")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.paths import user_cache_dir
    from tracking.assets import FACE_MODEL_FILE
    from tracking.convert_ict import convert_ict, write_face_model

    out = Path(args.out) if args.out is not None else user_cache_dir() / FACE_MODEL_FILE
    if out.suffix != ".npz":
        raise ValueError(f"{out}: output must end in .npz")
    model = convert_ict(args.folder, args.allow_partial,
                        progress=lambda files: tqdm(files, desc="convert-ict", unit="obj"))
    write_face_model(out, model)
    print(model.report())
    print(f"wrote {out}")
    return 0
