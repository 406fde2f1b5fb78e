"""`splatcam track` and `bench-track` end to end, and the params file format they share."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import av
import numpy as np
import pytest

from runtime.cli import main
from runtime.video_writer import VideoWriter
from tests.process_signals import REPO, signal_midway
from tracking.params import EXPRESSION_NAMES
from tracking.params_file import ParamsSequence, read_params, write_params


def frame_count(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(scope="module")
def noise_video(tmp_path_factory):
    """20 frames of noise: no face anywhere."""
    path = tmp_path_factory.mktemp("noface") / "noise.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(path, 25, 160, 120) as w:
        for _ in range(20):
            w.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    return path


def test_video_without_a_face_is_one_line_and_writes_nothing(noise_video, tmp_path, capsys):
    out, overlay = tmp_path / "p.npz", tmp_path / "o.mp4"
    assert main(["track", str(noise_video), "--out", str(out), "--overlay", str(overlay)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert last.startswith("splatcam track: error:") and "no face found in any of its 20 frames" in last
    assert not out.exists() and not overlay.exists()


def test_real_video_is_tracked_in_every_frame(shared_data, tmp_path, capsys):
    video = shared_data / "video" / "d0.mp4"
    out, overlay = tmp_path / "d0.npz", tmp_path / "d0.mp4"
    assert main(["track", str(video), "--out", str(out), "--overlay", str(overlay)]) == 0
    assert "face found in all 78 frames" in capsys.readouterr().out
    p = read_params(out)
    assert p.num_frames == 78 and p.valid.all() and p.fps == pytest.approx(25)
    assert 0 <= p.expression.min() and p.expression.max() <= 1
    assert np.abs(p.identity).max() > 0  # an identity was fitted
    assert (p.translation[:, 2] > 0).all()  # the head is in front of the camera
    assert frame_count(overlay) == 78


def test_face_lost_mid_video_is_held_flagged_and_reported(shared_data, tmp_path, capsys):
    """20 real frames, 10 frames of noise, 20 real frames: the gap is held at the last good value."""
    from tracking.video_frames import open_video

    frames = [f.rgb for f in open_video(shared_data / "video" / "d0.mp4").clip(0, 40).frames()]
    rng = np.random.default_rng(1)
    h, w = frames[0].shape[:2]
    video = tmp_path / "gap.mp4"
    with VideoWriter(video, 25, w, h) as writer:
        for rgb in frames[:20] + [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(10)] + frames[20:]:
            writer.write(rgb)
    out = tmp_path / "gap.npz"
    assert main(["track", str(video), "--out", str(out)]) == 0
    assert "no face in 10 of 50 frames" in capsys.readouterr().out
    p = read_params(out)
    assert not p.valid[20:30].any() and p.valid[:20].all() and p.valid[30:].all()
    for name in ("expression", "rotation", "translation"):
        held = getattr(p, name)[20:30]
        np.testing.assert_array_equal(held, np.broadcast_to(getattr(p, name)[19], held.shape))


def test_unsmoothed_option_changes_the_output(shared_data, tmp_path):
    video = shared_data / "video" / "mead256_M030_neutral_level1_001.mp4"
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["track", str(video), "--out", str(a)]) == 0
    assert main(["track", str(video), "--out", str(b), "--no-smooth"]) == 0
    pa, pb = read_params(a), read_params(b)
    step = lambda p: np.abs(np.diff(p.rotation, axis=0)).mean()
    assert step(pa) < step(pb)  # smoothing makes the pose steadier


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mp4", "no such video file"),
    (lambda d: (d / "text.mp4").write_text("not a video") and d / "text.mp4", "not a"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    video = make(tmp_path)
    out = tmp_path / "p.npz"
    assert main(["track", str(video), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not out.exists()


@pytest.mark.parametrize("extra", [["--overlay", "o.avi"], ["--fov", "0"], ["--max-side", "10"],
                                   ["--pose-beta", "-1"]])
def test_bad_options_are_refused_before_any_work(noise_video, tmp_path, capsys, extra):
    extra = [str(tmp_path / e) if e.endswith(".avi") else e for e in extra]
    assert main(["track", str(noise_video), "--out", str(tmp_path / "p.npz"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("splatcam track: error:") and "\n" not in err
    assert not (tmp_path / "p.npz").exists()
    assert main(["track", str(noise_video), "--out", str(tmp_path / "p.txt")]) == 2


def test_bench_track_writes_json(shared_data, tmp_path, capsys):
    out = tmp_path / "bench.json"
    video = shared_data / "video" / "mead256_M030_happy_level3_001.mp4"
    assert main(["bench-track", str(video), "--size", "320x240", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["size"] == [320, 240] and report["frames"] == report["frames_with_face"] == 94
    assert report["fps"] > 0 and report["landmarks_ms"]["p50"] > 0 and report["fit_ms"]["p50"] > 0
    assert main(["bench-track", str(video), "--size", "big"]) == 2


# ---------------------------------------------------------------- the params file

def sequence(t=5, rng=np.random.default_rng(0)) -> ParamsSequence:
    return ParamsSequence(rng.uniform(0, 1, (t, 53)), rng.normal(size=(t, 3)), rng.normal(size=(t, 3)),
                          rng.normal(size=100), rng.uniform(size=t) > 0.3, 30.0)


def test_params_round_trip(tmp_path):
    seq = sequence()
    write_params(tmp_path / "p.npz", seq)
    back = read_params(tmp_path / "p.npz")
    for name in ("expression", "rotation", "translation", "identity", "valid"):
        np.testing.assert_array_equal(getattr(back, name), getattr(seq, name))
    assert back.fps == 30.0
    with np.load(tmp_path / "p.npz") as raw:  # the fixed interface, key by key
        assert sorted(raw.files) == sorted(["expression", "rotation", "translation", "identity", "valid",
                                            "fps", "expression_names"])
        assert tuple(raw["expression_names"]) == EXPRESSION_NAMES and raw["fps"].shape == ()
        assert raw["valid"].dtype == bool and raw["expression"].dtype == np.float32


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("valid"), "missing arrays ['valid']"),
    (lambda a: a.update(rotation=a["rotation"][:-1]), "rotation has shape"),
    (lambda a: a.update(expression=a["expression"][:, :50]), "expression has shape"),
    (lambda a: a.update(valid=a["valid"].astype(np.int8)), "valid has dtype"),
    (lambda a: a.update(fps=np.float64(-1)), "fps must be a positive number"),
    (lambda a: a.update(fps=np.array([30.0, 25.0])), "fps has shape"),
    (lambda a: a.update(identity=np.zeros(99)), "identity has shape"),
    (lambda a: a["translation"].__setitem__((0, 0), np.nan), "translation contains NaN"),
    (lambda a: a.update(expression_names=np.array(EXPRESSION_NAMES[::-1])), "expression_names differ"),
])
def test_params_validation_is_one_line(tmp_path, change, message):
    seq = sequence()
    arrays = dict(expression=seq.expression, rotation=seq.rotation, translation=seq.translation,
                  identity=seq.identity, valid=seq.valid, fps=np.float64(30), expression_names=np.array(EXPRESSION_NAMES))
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError) as e:
        read_params(tmp_path / "bad.npz")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_params_reader_refuses_other_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable"):
        read_params(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        read_params(tmp_path / "none.npz")


def test_live_tracker_agrees_with_the_offline_tracker(shared_data):
    """Frame by frame (identity bootstrapped from the first faces) against the two-pass tracker."""
    from scipy.spatial.transform import Rotation

    from tracking.tracker import LiveTracker, track_video
    from tracking.video_frames import open_video

    video = open_video(shared_data / "video" / "mead256_M030_neutral_level1_001.mp4")
    offline = track_video(video).params
    live = LiveTracker(video.width, video.height)
    try:
        results = []
        for f in video.frames():
            results.append(live.process(f.rgb, f.source_time))
            live.wait_for_identity()  # the background identity fit, made synchronous for the test
    finally:
        live.close()
    assert live.identity_ready and all(r.valid for r in results)
    late = range(len(results) // 2, len(results))  # well after the identity was fitted
    angles = [(Rotation.from_rotvec(results[i].frame.rotation).inv()
               * Rotation.from_rotvec(offline.rotation[i])).magnitude() for i in late]
    assert np.degrees(np.max(angles)) < 3.0
    expression = np.array([results[i].frame.expression for i in late])
    assert np.abs(expression - offline.expression[list(late)]).mean() < 0.05


def test_an_interrupt_caught_inside_an_eval_still_exits_130():
    """Under `python -m`, CPython ends the process by SIGINT (-2) when a KeyboardInterrupt once
    escaped an eval'd string, even if splatcam caught it. The CLI must clear that so the exit
    code stays 130 (a real signal lands there by chance: tests/interrupt_in_eval.py forces it)."""
    done = subprocess.run([sys.executable, "-m", "tests.interrupt_in_eval"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr


def test_sigterm_takes_the_ctrl_c_path(shared_data, tmp_path):
    """SIGTERM in the middle of `splatcam track` (its own process): like Ctrl+C, the frames tracked
    so far are written and the exit code is 130."""
    out = tmp_path / "p.npz"
    code, err = signal_midway([sys.executable, "-m", "runtime.cli", "track", str(shared_data / "video" / "d6.mp4"),
                               "--out", str(out)], ready="frame/s", signum=signal.SIGTERM)
    assert code == 130, err
    p = read_params(out)
    assert 0 < p.num_frames < 1008 and p.valid.all()
