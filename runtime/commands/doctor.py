"""`splatcam doctor`: one table of what this machine has, what each missing piece costs, and
one line per missing piece on how to get it. Exit code 0 only when the live loop can run
(webcam, virtual camera, face model, MediaPipe, an inference backend, cache space)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="check GPU, backends, webcams, virtual camera and assets",
                              description=__doc__.split("\n\n")[0])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from runtime.doctor import diagnose, format_table, probe

    d = diagnose(probe())
    print(format_table(d))
    if d.missing:
        print("\nto fix:")
        for r in d.missing:
            print(f"  {r.component}: {r.fix}")
    if d.live_ready:
        print("\nthe live loop can run: splatcam live --virtual-camera")
        return 0
    needed = ", ".join(r.component for r in d.missing if r.required)
    print(f"\nthe live loop cannot run here (missing: {needed}); `splatcam demo` still works offline")
    return 1
