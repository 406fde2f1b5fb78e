"""Latency statistics: per-stage and end-to-end percentiles, throughput, JSON shape, the plot."""
import json
import time

import cv2
import numpy as np
import pytest
import torch

from runtime.latency import CAPTURE, LatencyRecorder, Percentiles
from runtime.latency_plot import plot_latency
from tests.conftest import requires_cuda

STAGES = ("track", "generate", "rasterize", "sr", "sink")


class ScriptedClock:
    """A clock the test moves by hand, so every duration is known exactly."""

    def __init__(self, start=100.0):
        self.now = start

    def __call__(self):
        return self.now


def run_scripted(recorder, clock, rng, frames):
    """Frames with random ages and stage times; returns what a correct recorder must report."""
    expected = {CAPTURE: [], **{s: [] for s in STAGES}}
    end_to_end, starts, ends = [], [], []
    for _ in range(frames):
        clock.now += rng.uniform(0.01, 0.05)  # waiting for the next frame
        age = rng.uniform(0.001, 0.030)
        captured_at = clock.now - age
        starts.append(clock.now)
        with recorder.frame(captured_at) as timing:
            for stage in STAGES:
                clock.now += rng.uniform(0.0, 0.002)  # untimed glue between stages
                with timing.stage(stage):
                    duration = rng.exponential(0.004)
                    clock.now += duration
                expected[stage].append(duration)
        expected[CAPTURE].append(age)
        end_to_end.append(clock.now - captured_at)
        ends.append(clock.now)
    return expected, np.array(end_to_end), starts, ends


def assert_percentiles(p, seconds):
    np.testing.assert_allclose([p.p50, p.p95, p.p99], np.percentile(np.asarray(seconds) * 1000, [50, 95, 99]),
                               rtol=1e-9)


def test_percentiles_match_numpy_on_random_timings():
    rng = np.random.default_rng(0)
    clock = ScriptedClock()
    recorder = LatencyRecorder(clock=clock)
    expected, end_to_end, starts, ends = run_scripted(recorder, clock, rng, frames=500)
    recorder.dropped = 17
    summary = recorder.summary()
    assert list(summary.stages_ms) == [CAPTURE, *STAGES]
    for stage, seconds in expected.items():
        assert_percentiles(summary.stages_ms[stage], seconds)
    assert_percentiles(summary.end_to_end_ms, end_to_end)
    # End-to-end is the capture age plus the stages plus the glue, so it exceeds their sum.
    stage_sum = np.sum([expected[s] for s in expected], axis=0)
    assert np.all(end_to_end >= stage_sum - 1e-12) and np.all(end_to_end < stage_sum + 0.0101)
    assert summary.frames == 500 and summary.dropped == 17
    assert summary.fps == pytest.approx(500 / (ends[-1] - starts[0]), rel=1e-12)


def test_window_keeps_only_recent_frames():
    rng = np.random.default_rng(1)
    clock = ScriptedClock()
    recorder = LatencyRecorder(window=50, clock=clock)
    expected, end_to_end, starts, ends = run_scripted(recorder, clock, rng, frames=200)
    summary = recorder.summary()
    assert summary.frames == 50
    assert_percentiles(summary.stages_ms["generate"], expected["generate"][-50:])
    assert_percentiles(summary.end_to_end_ms, end_to_end[-50:])
    assert summary.fps == pytest.approx(50 / (ends[-1] - starts[-50]), rel=1e-12)


def test_repeated_stage_sums_and_failed_frames_are_not_recorded():
    clock = ScriptedClock()
    recorder = LatencyRecorder(clock=clock)
    with recorder.frame(clock.now) as timing:
        for duration in (0.002, 0.003):  # two sinks in one frame
            with timing.stage("sink"):
                clock.now += duration
        timing.record("track", 0.010)
    with pytest.raises(RuntimeError):
        with recorder.frame(clock.now) as timing:
            with timing.stage("sink"):
                clock.now += 1.0
                raise RuntimeError("sink failed")
    summary = recorder.summary()
    assert summary.frames == 1
    assert summary.stages_ms["sink"].p50 == pytest.approx(5.0)
    assert summary.stages_ms["track"].p99 == pytest.approx(10.0)
    assert summary.end_to_end_ms.p50 == pytest.approx(5.0)


def test_real_clock_end_to_end_from_capture_timestamp():
    recorder = LatencyRecorder()
    for _ in range(3):
        captured_at = time.perf_counter() - 0.030  # a frame captured 30 ms ago
        with recorder.frame(captured_at) as timing:
            with timing.stage("generate"):
                time.sleep(0.010)
    summary = recorder.summary()
    assert 30.0 <= summary.stages_ms[CAPTURE].p50 < 40.0
    assert 10.0 <= summary.stages_ms["generate"].p50 < 60.0
    assert 40.0 <= summary.end_to_end_ms.p50 < 100.0


def test_json_dict_has_the_bench_shape():
    rng = np.random.default_rng(2)
    clock = ScriptedClock()
    recorder = LatencyRecorder(clock=clock)
    run_scripted(recorder, clock, rng, frames=20)
    data = json.loads(json.dumps(recorder.summary().to_json_dict()))
    assert isinstance(data["fps"], float) and data["fps"] > 0
    assert set(data["end_to_end_ms"]) == {"p50", "p95", "p99"}
    assert list(data["stages_ms"]) == [CAPTURE, *STAGES]
    for stage in data["stages_ms"].values():
        assert set(stage) == {"p50", "p95", "p99"} and all(isinstance(v, float) for v in stage.values())
        assert stage["p50"] <= stage["p95"] <= stage["p99"]
    assert data["frames"] == 20 and data["dropped"] == 0


def test_errors():
    with pytest.raises(ValueError, match="no frames were timed"):
        LatencyRecorder().summary()
    with pytest.raises(ValueError, match="at least one frame"):
        LatencyRecorder(window=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            LatencyRecorder(cuda_stages={"generate"})


@requires_cuda()
def test_cuda_stage_times_the_gpu_work():
    recorder = LatencyRecorder(cuda_stages={"generate"})
    a = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    host_launch = []
    for _ in range(5):
        with recorder.frame(time.perf_counter()) as timing:
            t0 = time.perf_counter()
            with timing.stage("generate"):
                for _ in range(10):
                    a = torch.tanh(a @ a * 1e-3)
            host_launch.append(time.perf_counter() - t0)
            torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a = torch.tanh(a @ a * 1e-3)
    torch.cuda.synchronize()
    synced = (time.perf_counter() - t0) * 1000
    gpu = recorder.summary().stages_ms["generate"].p50
    assert 0.5 * synced < gpu < 2.0 * synced, f"CUDA events {gpu:.2f} ms vs synchronised wall {synced:.2f} ms"


def test_plot_writes_a_png(tmp_path):
    summaries = {}
    for seed, name in enumerate(("eager", "onnxruntime")):
        clock = ScriptedClock()
        recorder = LatencyRecorder(clock=clock)
        run_scripted(recorder, clock, np.random.default_rng(seed), frames=50)
        summaries[name] = recorder.summary()
    out = plot_latency(summaries, tmp_path / "plots" / "latency.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(out))
    assert image.shape[0] == 450 and image.shape[1] >= 600 and image.std() > 10
    assert sorted(p.name for p in out.parent.iterdir()) == ["latency.png"]
    with pytest.raises(ValueError, match="must end in .png"):
        plot_latency(summaries, tmp_path / "latency.jpg")
    with pytest.raises(ValueError, match="no latency results"):
        plot_latency({}, tmp_path / "empty.png")


def test_percentiles_of_known_values():
    p = Percentiles.of(range(1, 101))
    assert (p.p50, p.p95, p.p99) == pytest.approx((50.5, 95.05, 99.01))
