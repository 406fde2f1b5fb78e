"""`splatcam gpu-check`: the GPU tests and GPU benchmark rows in one run, one JSON summary.

    splatcam gpu-check [--json out/gpu_check.json] [--avatar FULL_AVATAR_DIR]

`make gpu-check` installs the `gpu` extra (and TensorRT where it installs) and runs this. The
steps, their time limits (520 s in all) and the JSON format are in runtime/gpu_check.py. On a
machine without CUDA it prints the plan, writes a JSON that says nothing ran, and exits 0.
Exit 1 when a step fails or times out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_JSON = Path("out") / "gpu_check.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gpu-check", help="run the GPU tests and GPU benchmarks, one JSON summary",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=str(DEFAULT_JSON), metavar="OUT.json", help=f"summary (default {DEFAULT_JSON})")
    p.add_argument("--avatar", default=None, metavar="DIR",
                   help="a trained `full` avatar for the latency rows (default: a stand-in of its size)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from runtime.gpu_check import SCHEMA, execute, format_plan, plan

    out = Path(args.json)
    if out.suffix != ".json":
        raise ValueError(f"{out}: the summary must end in .json")
    if args.avatar is not None and not Path(args.avatar).is_dir():
        raise FileNotFoundError(f"{args.avatar}: no such avatar directory")
    cuda = torch.cuda.is_available()
    tensorrt = False
    if cuda:
        from export.tensorrt_engine import tensorrt_status
        tensorrt = tensorrt_status()[0]
    p = plan(out.with_suffix(""), Path(args.avatar) if args.avatar else None, tensorrt)
    print(format_plan(p))
    doc = {"schema": SCHEMA, "ran": cuda, "why_not": None, "device": torch.cuda.get_device_name() if cuda else None,
           "torch": torch.__version__, "cuda": torch.version.cuda, "seconds": 0.0, "passed": False, "steps": []}
    if not cuda:
        doc["why_not"] = f"no CUDA device (torch {torch.__version__} sees none)"
        print(f"gpu-check: {doc['why_not']}: nothing was run; a CUDA machine runs the plan above")
    else:
        start = time.perf_counter()
        execute(p, announce=lambda step: print(f"gpu-check: {step.name} ({step.what}), at most "
                                               f"{step.limit_s:.0f} s", file=sys.stderr, flush=True))
        doc["seconds"] = round(time.perf_counter() - start, 1)
        doc["passed"] = all(s.status == "passed" for s in p.steps)
        for s in p.steps:
            print(f"  {s.name:<13}{s.status:<10}{s.seconds:6.1f} s")
    doc["steps"] = [s.to_json() for s in p.steps]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if not cuda or doc["passed"] else 1
