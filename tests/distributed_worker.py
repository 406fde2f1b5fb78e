"""One rank of tests/test_distributed_training.py, started by torchrun (gloo, CPU).

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_worker.py \
        DATASET OUT RESULTS --steps 6 [--stop-after 3]

Runs the real `train_avatar` and records, without touching production code:
  - every frame this rank draws (the frame index j and the augmented camera K, seen by wrapping
    `avatar.train_gaussians.augmented_view`, tagged with the step from a wrapped `train_step`);
  - the parameters this rank holds at the end (named as `save_state` names them);
  - every attempt to write under OUT's parent directory (a Python audit hook: open for writing,
    mkdir, rename/replace, remove, rmtree, chmod). safetensors and cv2 write from native code, which
    the hook cannot see, but each of their files here is created beside an audited mkdir, rename
    or write, so a rank that writes checkpoints, avatars, previews or logs is seen.
Writes RESULTS/rank{R}.json and RESULTS/rank{R}.safetensors (RESULTS lies outside OUT's parent).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file

import avatar.train as train_module
import avatar.train_gaussians as gaussians_module
from avatar.train import TrainOptions, train_avatar
from tests.training_fixtures import micro_profile

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {"os.mkdir": 1, "os.remove": 1, "os.rmdir": 1, "shutil.rmtree": 1, "os.chmod": 1,
                "os.truncate": 1, "os.rename": 2, "os.link": 2, "os.symlink": 2}  # event -> paths among its args


def _watch_writes(root: str, writes: list[str]) -> None:
    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
            paths = [path] if writing else []
        elif event in _PATH_EVENTS:
            paths = list(args[:_PATH_EVENTS[event]])
        else:
            return
        for p in paths:
            if isinstance(p, (str, bytes, os.PathLike)) and os.fsdecode(p).startswith(root):
                writes.append(f"{event} {os.fsdecode(p)}")

    sys.addaudithook(hook)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--stop-after", type=int)
    args = parser.parse_args()
    torch.set_num_threads(1)  # two ranks on two cores
    rank = int(os.environ["RANK"])

    draws: list[dict] = []
    stages: list[gaussians_module.GaussianStage] = []
    real_step, real_view = train_module.train_step, gaussians_module.augmented_view

    def recording_step(stage, *a, **k):
        stages[:] = [stage]
        return real_step(stage, *a, **k)

    def recording_view(data, j, *a, **k):
        view = real_view(data, j, *a, **k)
        draws.append({"step": stages[0].step, "frame": int(j), "K": view[0].K.flatten().tolist()})
        return view

    train_module.train_step = recording_step
    gaussians_module.augmented_view = recording_view
    writes: list[str] = []
    _watch_writes(str(args.out.parent.resolve()) + os.sep, writes)

    # No VGG term: loading its weights on every rank costs seconds and is not part of the
    # distributed path (its parameters are frozen, never all-reduced).
    profile = micro_profile(steps=args.steps)
    profile = replace(profile, gaussian=replace(profile.gaussian, lambda_vgg=0.0))
    summary = train_avatar(TrainOptions(args.dataset, args.out.resolve(), profile, stop_after=args.stop_after))

    stage = stages[0]
    tensors = {f"model.{k}": v for k, v in stage.model.state_dict().items()}
    tensors.update({f"sr.{k}": v for k, v in stage.sr.state_dict().items()})
    tensors["pose_offsets"] = stage.pose_offsets
    args.results.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
              str(args.results / f"rank{rank}.safetensors"))
    (args.results / f"rank{rank}.json").write_text(json.dumps(
        {"rank": rank, "step": summary.step, "finished": summary.finished, "draws": draws, "writes": writes}))


if __name__ == "__main__":
    main()
