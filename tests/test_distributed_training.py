"""Multi-process training under torchrun: 2 CPU ranks on gloo, the micro profile.

One module-scoped pair of real torchrun launches (tests/distributed_worker.py): a fresh run stopped
at step 4, then a new launch that resumes it to step 8, as a user interrupting and restarting would.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from avatar.checkpoint import load_avatar
from avatar.train import state_dir
from tests.training_fixtures import write_micro_dataset

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "distributed_worker.py"
STEPS, STOP = 8, 4
TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build")


@dataclass
class Rank:
    info: dict  # rank{R}.json: step, finished, draws, writes
    tensors: dict[str, torch.Tensor] = field(repr=False)  # the parameters (and buffers) it holds at the end


@dataclass
class Launch:
    ranks: list[Rank]
    saved: dict[str, torch.Tensor] = field(repr=False)  # rank 0's state.safetensors right after the launch


@dataclass
class Runs:
    out: Path
    fresh: Launch
    resumed: Launch


def _torchrun(results: Path, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    # --standalone: a local rendezvous on a port the agent picks itself (offline, no port races).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
           *args, str(results)]
    results.mkdir(parents=True)
    log = results / "torchrun.log"
    # Output to a file, not a pipe: torchrun starts each rank in its own session, so a hung rank
    # could hold a pipe open after the agent is gone.
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            # SIGTERM lets the agent stop its ranks (SIGTERM, then SIGKILL after 30 s).
            proc.terminate()
            try:
                proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s (hung?); its output:\n"
                        f"{log.read_text()[-6000:]}")
    assert proc.returncode == 0, f"torchrun exited {proc.returncode}; its output:\n{log.read_text()[-6000:]}"


def _launch(dataset: Path, out: Path, results: Path, *extra: str) -> Launch:
    _torchrun(results, str(dataset), str(out), "--steps", str(STEPS), *extra)
    ranks = [Rank(json.loads((results / f"rank{r}.json").read_text()), load_file(str(results / f"rank{r}.safetensors")))
             for r in range(2)]
    return Launch(ranks, load_file(str(state_dir(out) / "state.safetensors")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data) -> Runs:
    root = tmp_path_factory.mktemp("distributed")
    dataset = write_micro_dataset(root / "ds")
    out = (root / "runs" / "av").resolve()  # the worker watches writes under runs/
    fresh = _launch(dataset, out, root / "fresh", "--stop-after", str(STOP))
    resumed = _launch(dataset, out, root / "resumed")
    return Runs(out, fresh, resumed)


def _launches(runs: Runs) -> list[tuple[str, Launch]]:
    return [("fresh", runs.fresh), ("resumed", runs.resumed)]


def test_every_rank_ends_with_rank_0s_bit_identical_parameters(runs):
    for name, launch in _launches(runs):
        a, b = (r.tensors for r in launch.ranks)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name} run: rank 1's {k} differs from rank 0's"
            # What rank 0 saved is what the ranks hold.
            assert torch.equal(launch.saved[k], a[k]), f"{name} run: saved {k} differs from the ranks'"
    assert [r.info["step"] for r in runs.fresh.ranks] == [STOP, STOP]
    assert [r.info["step"] for r in runs.resumed.ranks] == [STEPS, STEPS]
    assert all(r.info["finished"] for r in runs.resumed.ranks)
    # The resumed launch trained (identical but frozen parameters would pass the checks above).
    assert not torch.equal(runs.fresh.ranks[0].tensors["model.positions"],
                           runs.resumed.ranks[0].tensors["model.positions"])


def test_ranks_draw_different_frames_before_and_after_a_resume(runs):
    def views(rank: Rank) -> list[tuple]:
        return [(d["frame"], tuple(d["K"])) for d in rank.info["draws"]]

    def frames(rank: Rank) -> list[int]:
        return [d["frame"] for d in rank.info["draws"]]

    for name, launch, steps in [("fresh", runs.fresh, range(STOP)), ("resumed", runs.resumed, range(STOP, STEPS))]:
        for r in launch.ranks:
            assert [d["step"] for d in r.info["draws"]] == list(steps), name
        same = views(launch.ranks[0]) == views(launch.ranks[1])
        assert not same, f"{name} run: both ranks drew the same frames {frames(launch.ranks[0])} and crops"
    # After a resume no rank replays the sequence a rank drew from the start (e.g. its generator
    # re-seeded without the step), which would repeat the first samples instead of new ones.
    for r in runs.resumed.ranks:
        for f in runs.fresh.ranks:
            replay = views(r) == views(f)
            assert not replay, f"after the resume rank {r.info['rank']} replays rank {f.info['rank']}'s " \
                f"first draws {frames(f)}"


def test_only_rank_0_writes_files(runs):
    for name, launch in _launches(runs):
        zero, one = (r.info["writes"] for r in launch.ranks)
        assert one == [], f"{name} run: rank 1 wrote {one[:5]}"
        # The watch sees rank 0's writes, so an empty list from rank 1 means something.
        work = state_dir(runs.out)
        assert f"os.rename {work / 'state.json'}" in zero and f"os.rename {runs.out}" in zero, zero
    avatar = load_avatar(runs.out)
    assert avatar.metadata.training["step"] == STEPS and avatar.metadata.training["finished"]
    assert json.loads((state_dir(runs.out) / "state.json").read_text())["step"] == STEPS
    with open(state_dir(runs.out) / "loss_log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, STEPS + 1))
    assert sorted(p.name for p in (state_dir(runs.out) / "previews").iterdir()) == \
        ["step_000003.png", "step_000006.png"]
