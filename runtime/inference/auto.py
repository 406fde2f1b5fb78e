"""`--backend auto`: time the available backends against each other and keep the fastest.

On a loaded machine a few frames per backend, one backend after the other, measure the load
as much as the backend (issue 11: five frames each picked torch.compile over an ONNX Runtime
twice as fast). So the candidates race in interleaved rounds: each round times one frame
(generator + SR at the avatar's render size) of every candidate back to back, in an order that
rotates, so a burst of load hits them alike. After `MIN_ROUNDS` the leader (lowest median)
wins as soon as the median, over rounds, of its time divided by the runner-up's time in the
same round is below 1 - `MARGIN`; otherwise rounds continue up to `MAX_ROUNDS` or `BUDGET_S`
seconds, and a leader that is still not clearly ahead is kept as a tie within noise. The
reason string says which, with the numbers.

The choice is remembered per avatar and machine (`inference_auto.json` in the cache), so later
starts build only the winner. `forget_choice` drops it: the live loop calls it when it falls
behind its source with a remembered pick, so the next start races again.
"""
from __future__ import annotations

import json
import logging
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from avatar.checkpoint import Avatar
from core.atomic import write_text

logger = logging.getLogger(__name__)

CHOICES_FILE = "inference_auto.json"
WARMUP_ROUNDS = 2  # untimed: first calls allocate, and compile / ORT specialise
MIN_ROUNDS = 8
MAX_ROUNDS = 40
BUDGET_S = 30.0  # timed rounds stop after this long even if undecided
MARGIN = 0.10  # the leader must be at least this much faster, round for round


def frame_seconds(backend, avatar: Avatar, seed: int) -> float:
    """Wall time of one generate + upsample at the avatar's render size, on random inputs."""
    from export.parity import random_inputs

    gen = torch.Generator().manual_seed(seed)
    cuda = backend.device.type == "cuda"
    # Inputs made and used in inference mode, as the live loop makes them: torch.compile guards
    # on that (an inference tensor lacks a dispatch key), and a mismatch compiles again.
    with torch.inference_mode():
        theta, pose, image = (t.to(backend.device) for t in random_inputs(avatar, gen))
        image = image[0].permute(1, 2, 0)
        if cuda:
            torch.cuda.synchronize(backend.device)
        start = time.perf_counter()
        backend.generate(theta, pose)
        backend.upsample(image)
        if cuda:
            torch.cuda.synchronize(backend.device)
        return time.perf_counter() - start


@dataclass(frozen=True)
class Race:
    winner: str
    medians_ms: dict[str, float]
    rounds: int
    ratio: float | None  # median over rounds of winner time / runner-up time (None: one candidate)
    decided: bool  # ratio < 1 - MARGIN

    def reason(self) -> str:
        ranked = ", ".join(f"{n} {ms:.1f} ms" for n, ms in sorted(self.medians_ms.items(), key=lambda kv: kv[1]))
        text = f"generator + SR per frame {ranked} (medians of {self.rounds} interleaved rounds)"
        if self.ratio is None:
            return f"the only backend available: {text}"
        verdict = (f"fastest, {1 - self.ratio:.0%} below the runner-up round for round" if self.decided else
                   f"a tie within noise ({1 - self.ratio:+.0%} round for round, margin {MARGIN:.0%}); kept the "
                   "lowest median")
        return f"{verdict}: {text}"


def race(backends: dict, avatar: Avatar, timer: Callable[[object, Avatar, int], float] = frame_seconds,
         clock: Callable[[], float] = time.perf_counter) -> Race:
    """Interleaved rounds over `backends` (name -> backend) until one is clearly fastest (module docstring)."""
    names = list(backends)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(WARMUP_ROUNDS):
        for name in names:
            timer(backends[name], avatar, r)
    start = clock()
    rounds = 0
    while True:
        order = names[rounds % len(names):] + names[:rounds % len(names)]
        for name in order:
            times[name].append(timer(backends[name], avatar, WARMUP_ROUNDS + rounds))
        rounds += 1
        medians = {n: statistics.median(t) for n, t in times.items()}
        ranked = sorted(names, key=medians.get)
        if len(names) == 1:
            return Race(ranked[0], _ms(medians), rounds, None, True)
        leader, runner_up = ranked[0], ranked[1]
        ratio = statistics.median(a / b for a, b in zip(times[leader], times[runner_up]))
        decided = ratio < 1 - MARGIN
        if rounds >= MIN_ROUNDS and (decided or rounds >= MAX_ROUNDS or clock() - start >= BUDGET_S):
            return Race(leader, _ms(medians), rounds, ratio, decided)


def _ms(medians: dict[str, float]) -> dict[str, float]:
    return {n: 1000.0 * s for n, s in medians.items()}


def choice_key(avatar: Avatar, device: torch.device, candidates: list[str]) -> str:
    """What the choice depends on: the avatar, the machine, the candidates and their versions."""
    from export.onnx_export import avatar_fingerprint

    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "none"
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{platform.machine()} {platform.processor()} x{torch.get_num_threads()} threads"
    return " | ".join([avatar_fingerprint(avatar)[:16], machine, ",".join(candidates),
                       f"torch {torch.__version__}", f"onnxruntime {ort_version}"])


def read_choices(path: Path) -> dict:
    try:
        choices = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return choices if isinstance(choices, dict) else {}


def write_choices(path: Path, choices: dict) -> None:
    try:
        write_text(path, json.dumps(choices, indent=1) + "\n")
    except OSError:
        pass  # a read-only cache only costs a new race next time


def forget_choice(path: Path, key: str) -> None:
    choices = read_choices(path)
    if choices.pop(key, None) is not None:
        write_choices(path, choices)
