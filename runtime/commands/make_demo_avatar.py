"""`splatcam make-demo-avatar`: rebuild the demo "mannequin" avatar (avatar/mannequin.py).

    splatcam make-demo-avatar [--out DIR] [--force]

The demo avatar ships prebuilt in avatar/data/demo_avatar/, which `--avatar demo` loads; this
command rebuilds it there (or into --out) from the ICT face model, in about two minutes on two
CPU cores. An up-to-date avatar already at the target is kept unless --force. The write is
atomic (an interrupted build leaves nothing half-written).
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("make-demo-avatar", help="rebuild the demo mannequin avatar (from the ICT face model)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="avatar directory to write (default: the shipped avatar/data/demo_avatar)")
    p.add_argument("--force", action="store_true", help="rebuild even if an up-to-date avatar is there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avatar.demo_avatar import SHIPPED_DIR, build_demo_avatar, demo_avatar_problem

    target = args.out if args.out is not None else SHIPPED_DIR
    problem = "rebuild asked for" if args.force else demo_avatar_problem(target)
    if problem is None:
        print(f"demo avatar up to date (keep it, or rebuild with --force): {target}")
        return 0
    print(f"building the demo avatar ({problem}); about two minutes on two CPU cores")
    build_demo_avatar(target, progress=True)
    print(f"demo avatar: {target}")
    return 0
