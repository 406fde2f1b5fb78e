"""`splatcam bench`: a real face video through the live loop for two backends, a few frames each:
the JSON has DESIGN.md's fixed shape, the table is printed, the PNG is written."""
import json

import pytest

from runtime.cli import main
from runtime.commands.bench import STAGES, format_table, speedup

PERCENTILES = {"p50", "p95", "p99"}


def test_bench_json_table_and_plot(demo_avatar, shared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SPLATCAM_CACHE", str(tmp_path / "cache"))  # the ONNX export goes here
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(["bench", "--avatar", str(demo_avatar), "--driver", str(shared_data / "video" / "d0.mp4"),
                 "--backend", "torch", "--backend", "onnxruntime", "--frames", "6", "--warmup", "2",
                 "--size", "64", "--json", str(out), "--plot", str(plot)])
    captured = capsys.readouterr()
    assert code == 0, captured.err

    doc = json.loads(out.read_text())
    assert set(doc) == {"device", "backends"} and isinstance(doc["device"], str) and doc["device"]
    assert list(doc["backends"]) == ["torch", "onnxruntime"]
    for entry in doc["backends"].values():
        assert isinstance(entry["fps"], float) and entry["fps"] > 0
        assert set(entry["end_to_end_ms"]) == PERCENTILES
        assert list(entry["stages_ms"]) == list(STAGES)
        for p in [entry["end_to_end_ms"], *entry["stages_ms"].values()]:
            assert set(p) == PERCENTILES and all(isinstance(v, float) for v in p.values())
            assert 0 <= p["p50"] <= p["p95"] <= p["p99"]
        assert entry["frames"] == 6 and entry["dropped"] >= 0
        # End to end covers every stage of the frame.
        assert entry["end_to_end_ms"]["p50"] >= entry["stages_ms"]["track"]["p50"]
    s = doc["backends"]["onnxruntime"]["speedup_vs_torch"]
    assert set(s) == {"generate_sr_p50", "end_to_end_p50", "fps"} and all(v > 0 for v in s.values())

    for text in ("end-to-end", "torch", "onnxruntime", "generate", "onnxruntime vs torch eager"):
        assert text in captured.out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_procedural_driver_without_a_video(demo_avatar, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--avatar", str(demo_avatar), "--backend", "torch", "--frames", "5", "--warmup", "1",
                 "--size", "64", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    entry = json.loads(out.read_text())["backends"]["torch"]
    assert list(entry["stages_ms"]) == list(STAGES) and entry["frames"] == 5
    assert "procedural (no tracking)" in captured.out


def test_table_and_speedup_from_known_numbers():
    def entry(gen, sr, e2e, fps):
        p = lambda v: {"p50": v, "p95": v + 1, "p99": v + 2}  # noqa: E731
        return {"fps": fps, "dropped": 0, "end_to_end_ms": p(e2e),
                "stages_ms": {"generate": p(gen), "sr": p(sr)}}

    torch_entry, ort = entry(10.0, 30.0, 100.0, 10.0), entry(4.0, 16.0, 80.0, 12.5)
    assert speedup(torch_entry, ort) == pytest.approx({"generate_sr_p50": 2.0, "end_to_end_p50": 1.25, "fps": 1.25})
    table = format_table({"torch": torch_entry, "onnxruntime": ort})
    lines = table.splitlines()
    assert "10.0 / 11.0 / 12.0" in next(line for line in lines if line.startswith("generate"))
    assert next(line for line in lines if line.startswith("rasterize")).split()[1:] == ["-", "-"]


def test_bad_input_exits_2_with_one_line(demo_avatar, shared_data, tmp_path, capsys):
    d0 = str(shared_data / "video" / "d0.mp4")
    base = ["bench", "--avatar", str(demo_avatar)]
    for args, message in [
        (["--json", str(tmp_path / "b.json"), "--warmup", "-1"], "--warmup must be >= 0"),
        (["--driver", d0, "--json", str(tmp_path / "b.txt")], "must end in .json"),
        (["--driver", d0, "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "p.jpg")], "must end in .png"),
        (["--driver", str(tmp_path / "none.mp4"), "--json", str(tmp_path / "b.json")], "no such video file"),
        (["--driver", d0, "--json", str(tmp_path / "b.json"), "--frames", "2"], "--frames must be at least 5"),
        (["--driver", d0, "--json", str(tmp_path / "b.json"), "--size", "66"], "multiple of 4"),
    ]:
        code = main([*base, *args])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (args, err)
    assert not (tmp_path / "b.json").exists()
