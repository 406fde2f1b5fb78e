"""`splatcam make-demo-avatar`: build the demo "mannequin" avatar (avatar/mannequin.py).

    splatcam make-demo-avatar [--out DIR] [--force]

Without --out the avatar goes to the user cache (`~/.cache/splatcam/demo_avatar`, or under
`SPLATCAM_CACHE`), where `--avatar demo` finds it; other commands build it there on first use.
An up-to-date avatar already at the target is kept unless --force. About two minutes on two CPU
cores; the write is atomic (an interrupted build leaves nothing half-written).
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("make-demo-avatar", help="build the demo mannequin avatar (from the ICT face model)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="avatar directory to write (default: the user cache)")
    p.add_argument("--force", action="store_true", help="rebuild even if an up-to-date avatar is there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avatar.demo_avatar import ensure_demo_avatar

    path = ensure_demo_avatar(progress=True, directory=args.out, force=args.force)
    print(f"demo avatar: {path}")
    return 0
