"""`splatcam train`: train an avatar from a prepared dataset (mesh stage, then Gaussian stage).

    splatcam train --dataset DS --profile cpu|cpu-fast|tiny|small|full --out AV [--raster cpu|gsplat]
                   [--steps N] [--minutes M] [--mesh-steps N] [--restart]

Profiles (avatar/profiles.py): `cpu` (the default) is the recipe for a 2-core CPU in under
an hour (128 px render, 256 px output, a 45-minute Gaussian stage), `cpu-fast` the same model
trained for 5,000 steps (about a quarter of an hour, slightly blurrier), `tiny` trains in
minutes for trying the pipeline (64 -> 256, low quality), `small` takes CPU hours or GPU minutes
(256 -> 1024), `full` is the reference (512 -> 2048, GPU). The avatar is written to AV at every
checkpoint; resume state, the loss log (CSV, and TensorBoard when installed) and preview images
go to AV.train/. Running the same command again resumes from the last checkpoint; Ctrl+C saves
one first. Multi-GPU:
`torchrun --nproc_per_node=G -m runtime.cli train ... --raster gsplat`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from avatar.profiles import PROFILES
from runtime.options import add_raster_argument, raster_choice


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train an avatar from a dataset made by `splatcam prepare`",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="dataset folder from `splatcam prepare`")
    p.add_argument("--profile", choices=list(PROFILES), default="cpu", help="model size and schedule")
    p.add_argument("--out", required=True, help="avatar directory to write")
    add_raster_argument(p)
    p.add_argument("--steps", type=int, default=None, help="Gaussian-stage steps (default: the profile's)")
    p.add_argument("--minutes", type=float, default=None,
                   help="Gaussian-stage time budget: train until it is spent or the steps are done, the rates "
                        "decaying over whichever ends first (default: the profile's; 0 = none; --steps alone "
                        "turns it off)")
    p.add_argument("--mesh-steps", type=int, default=None, help="mesh-stage steps (default: the profile's)")
    p.add_argument("--restart", action="store_true", help="ignore saved training state and start over")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from avatar.train import TrainOptions, state_dir, train_avatar

    for name in ("steps", "mesh_steps", "minutes"):
        value = getattr(args, name)
        if value is not None and not value >= 0:  # also refuses nan
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {value}")

    def progress(iterable, label, total):
        return tqdm(iterable, desc=label, total=total, unit="step" if "stage" in label else "frame")

    summary = train_avatar(TrainOptions(dataset=args.dataset, out=args.out, profile=args.profile,
                                        backend=raster_choice(args), gaussian_steps=args.steps,
                                        gaussian_minutes=args.minutes, mesh_steps=args.mesh_steps,
                                        restart=args.restart, seed=args.seed, progress=progress))
    mesh = f", mesh-stage held-out PSNR {summary.mesh_heldout_psnr:.2f} dB" if summary.mesh_heldout_psnr else ""
    vgg = "" if summary.vgg else " (without the VGG term: no VGG16 weights in the torch cache)"
    print(f"wrote {args.out} at step {summary.step}: mesh stage {summary.mesh_seconds:.0f} s, "
          f"Gaussian stage {summary.gaussian_seconds:.0f} s{mesh}{vgg}; logs in {state_dir(Path(args.out))}")
    return 0
