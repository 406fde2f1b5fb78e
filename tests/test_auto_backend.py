"""`--backend auto` under load: the interleaved race, its verdicts, and the live loop's re-check."""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import runtime.inference.auto as auto
import runtime.live_loop as live_loop
from capture.synthetic import SyntheticSource
from runtime.live_config import LiveConfig
from runtime.live_loop import LiveLoop
from runtime.pipeline import LiveDriver
from tracking.driving_frame import DrivingFrame
from tracking.params import N_EXPRESSION
from tracking.procedural import REST_TRANSLATION, ProceduralTracker


class LoadedMachine:
    """A timer for `auto.race`: each backend has a true frame time, and load from other jobs
    comes in bursts that multiply every call made during the burst (bursts of `burst` calls,
    `factor` times slower). A clock advances by the simulated time."""

    def __init__(self, true_s: dict[str, float], factor: float = 4.0, burst: int = 5) -> None:
        self.true_s, self.factor, self.burst = true_s, factor, burst
        self.calls, self.now = 0, 0.0

    def __call__(self, backend, avatar, seed) -> float:
        loaded = (self.calls // self.burst) % 2 == 0
        self.calls += 1
        t = self.true_s[backend] * (self.factor if loaded else 1.0)
        self.now += t
        return t

    def clock(self) -> float:
        return self.now


def sequential_pick(machine: LoadedMachine, names: list[str], frames: int = 5) -> str:
    """The old auto: one warm-up and `frames` timed frames per backend, one backend after the other."""
    medians = {}
    for name in names:
        times = [machine(name, None, i) for i in range(frames + 1)][1:]
        medians[name] = float(np.median(times))
    return min(medians, key=medians.get)


def test_interleaved_race_finds_the_faster_backend_under_bursty_load():
    true_s = {"compile": 0.030, "onnxruntime": 0.015}
    # The old sequential timing is fooled here: compile is timed while the machine is quiet.
    assert sequential_pick(LoadedMachine(true_s, burst=6), ["onnxruntime", "compile"]) == "compile"
    machine = LoadedMachine(true_s, burst=6)
    result = auto.race({"onnxruntime": "onnxruntime", "compile": "compile"}, None, machine, machine.clock)
    assert result.winner == "onnxruntime" and result.decided
    assert result.ratio == pytest.approx(0.5, abs=0.05)
    assert auto.MIN_ROUNDS <= result.rounds < auto.MAX_ROUNDS
    assert "fastest, 50% below the runner-up" in result.reason()
    assert "onnxruntime" in result.reason() and "compile" in result.reason()


def test_a_tie_runs_to_the_limit_and_says_so():
    machine = LoadedMachine({"torch": 0.020, "onnxruntime": 0.0205})
    result = auto.race({"torch": "torch", "onnxruntime": "onnxruntime"}, None, machine, machine.clock)
    assert not result.decided
    assert result.rounds == auto.MAX_ROUNDS or machine.now >= auto.BUDGET_S
    assert "tie within noise" in result.reason()


def test_a_single_candidate_needs_no_race():
    machine = LoadedMachine({"torch": 0.02})
    result = auto.race({"torch": "torch"}, None, machine, machine.clock)
    assert result.winner == "torch" and result.ratio is None and "only backend" in result.reason()


def test_remembered_choice_is_forgotten(tmp_path):
    path = tmp_path / auto.CHOICES_FILE
    auto.write_choices(path, {"a": {"backend": "torch"}, "b": {"backend": "onnxruntime"}})
    auto.forget_choice(path, "a")
    assert auto.read_choices(path) == {"b": {"backend": "onnxruntime"}}


class SlowRenderer:
    """Renders a grey frame in `seconds`; its backend carries a remembered auto pick."""

    def __init__(self, seconds: float, forget) -> None:
        self.seconds, self.device = seconds, torch.device("cpu")
        self.backend = SimpleNamespace(name="compile", forget_choice=forget)

    def render(self, drive, timing) -> np.ndarray:
        time.sleep(self.seconds)
        return np.zeros((8, 8, 3), np.uint8)


@pytest.mark.parametrize("render_s, behind", [(0.12, True), (0.0, False)])
def test_live_loop_behind_its_source_forgets_the_remembered_pick(monkeypatch, render_s, behind):
    monkeypatch.setattr(live_loop, "PACE_WINDOW_S", 0.8)
    forgotten = []
    logged = []
    neutral = DrivingFrame(np.zeros(N_EXPRESSION, np.float32), np.zeros(3, np.float32), REST_TRANSLATION)
    config = LiveConfig(max_frames=40 if behind else 60, report_after_frames=0)
    loop = LiveLoop(SyntheticSource(fps=30, pace=True), ProceduralTracker(), LiveDriver.from_config(neutral, config),
                    SlowRenderer(render_s, lambda: forgotten.append(1)), config=config, log=logged.append)
    loop.run()
    assert forgotten == ([1] if behind else [])  # once at most
    assert any("behind its source's 30" in line and "next start times the backends again" in line
               for line in logged) == behind
