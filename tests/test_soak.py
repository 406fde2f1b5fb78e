"""Long calls: per-period memory and latency (runtime/soak.py) and `splatcam bench --duration`."""
import json

import pytest

from runtime.cli import main
from runtime.latency import LatencyRecorder
from runtime.soak import MinuteLog, resident_mb, soak_summary


class FakeLoop:
    """What MinuteLog reads from a LiveLoop, over a real LatencyRecorder fed known latencies."""

    def __init__(self) -> None:
        self.now = 0.0
        self.recorder = LatencyRecorder(clock=lambda: self.now)

    def frame(self, latency_s: float, step_s: float) -> None:
        with self.recorder.frame(self.now - latency_s):
            pass
        self.now += step_s

    def timed_frames(self) -> int:
        return self.recorder.recorded

    def latency_of_last(self, frames: int):
        return self.recorder.summary(frames)


def test_minute_log_percentiles_per_period_and_the_drift_summary():
    loop, rss = FakeLoop(), iter(float(m) for m in range(1000, 2000, 10))
    log = MinuteLog(period_s=10.0, clock=lambda: loop.now, rss=lambda: next(rss))
    for i in range(400):  # 50 s at 8 fps; latency 50 ms for the first 20 s, then 80 ms
        loop.frame(0.05 if loop.now < 20 else 0.08, 0.125)
        log.tick(loop)
    assert [p["minute"] for p in log.periods] == [1, 2, 3, 4]
    assert all(p["frames"] == 80 and p["fps"] == pytest.approx(8) for p in log.periods)
    assert log.periods[0]["end_to_end_ms"]["p99"] == pytest.approx(50, abs=0.01)
    assert log.periods[2]["end_to_end_ms"]["p50"] == pytest.approx(80, abs=0.01)
    s = soak_summary(log.periods)
    assert s["window_periods"] == 1  # fewer than 10 periods: first vs last
    assert s["p99_drift_pct"] == pytest.approx(60, abs=0.1)
    assert s["rss_first_mb"] == 1000 and s["rss_growth_pct"] == pytest.approx(3.0)
    assert soak_summary(log.periods[:1]) is None


def test_resident_memory_is_read_on_linux():
    import sys

    rss = resident_mb()
    if sys.platform.startswith("linux"):
        assert 10 < rss < 100_000
    else:
        assert rss is None


def test_bench_duration_writes_periods_and_the_soak_summary(demo_avatar, tmp_path, capsys):
    out = tmp_path / "soak.json"
    code = main(["bench", "--avatar", str(demo_avatar), "--backend", "torch", "--duration", "6", "--period", "1",
                 "--warmup", "2", "--size", "64", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    entry = json.loads(out.read_text())["backends"]["torch"]
    # A period closes at the first frame after it is over: on a busy machine (a frame a second or
    # slower) fewer than six close, never more.
    assert 2 <= len(entry["minutes"]) <= 6
    for i, period in enumerate(entry["minutes"], 1):
        assert period["minute"] == i and period["frames"] > 0 and period["rss_mb"] > 0
        assert set(period["end_to_end_ms"]) == {"p50", "p95", "p99"}
    assert {"rss_growth_pct", "p99_drift_pct"} <= set(entry["soak"])
    assert "resident memory" in captured.out and "end-to-end p99" in captured.out


def test_bad_duration_is_one_line(demo_avatar, tmp_path, capsys):
    code = main(["bench", "--avatar", str(demo_avatar), "--duration", "-3", "--json", str(tmp_path / "b.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--duration must be a positive" in err and len(err.splitlines()) == 1
