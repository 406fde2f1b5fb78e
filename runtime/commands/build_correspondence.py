"""`splatcam build-correspondence`: regenerate tracking/data/mediapipe_to_ict.npz.

    splatcam build-correspondence [--mesh METADATA.pbtxt] [--face-model ICT.npz] [--out FILE]

The file ships with the project; rebuild it after changing the face model or the method in
tracking/correspondence.py. The MediaPipe geometry metadata is found like every asset
(DESIGN.md lookup order: explicit path, SPLATCAM_ASSETS, user cache, ../shared/data).
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tracking.correspondence import DEFAULT_PATH

    p = subparsers.add_parser("build-correspondence", help="regenerate the MediaPipe -> ICT point correspondence",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--mesh", default=None, help="MediaPipe geometry_pipeline_metadata_landmarks.pbtxt")
    p.add_argument("--face-model", default=None, help="ict_face_model.npz")
    p.add_argument("--out", default=str(DEFAULT_PATH), help=f"output file (default {DEFAULT_PATH})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tracking.assets import find_asset
    from tracking.correspondence import (CANONICAL_MESH_FILE, build_correspondence, canonical_mediapipe_mesh,
                                         save_correspondence)
    from tracking.face_model import load_face_model_data

    data = load_face_model_data(args.face_model)
    mesh = canonical_mediapipe_mesh(find_asset(CANONICAL_MESH_FILE, args.mesh))
    c = build_correspondence(data, mesh)
    path = save_correspondence(c, args.out)
    span = np.ptp(data.neutral[data.region("face")], 0).max()
    print(f"{c.mediapipe_ids.size} MediaPipe points on the ICT face (face size {span:.2f} units); wrote {path}")
    return 0
