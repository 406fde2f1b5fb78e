"""The live loop: a real face video, paced like a webcam, through the real tracker and the demo avatar
into a virtual camera and a file; clean shutdown on Ctrl+C; face-lost easing; the `live` command.

The virtual camera is a fake pyvirtualcam backend registered with `pyvirtualcam.register_backend`:
a real one (v4l2loopback) cannot exist on this machine. Everything else is the real thing.
"""
import _thread
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import pyvirtualcam
import torch
from scipy.spatial.transform import Rotation, Slerp

from avatar.checkpoint import load_avatar
from avatar.render_pipeline import ModuleStages, RenderPipeline, to_uint8
from capture.video_file import VideoFileSource
from runtime.cli import main
from runtime.inference import create_backend
from runtime.latency import LatencySummary, Percentiles
from runtime.live_config import LiveConfig
from runtime.live_loop import LiveLoop, audio_delay_ms, format_latency_report
from runtime.pipeline import AvatarRenderer, LiveDriver, avatar_neutral, output_camera
from runtime.sinks.file import FileSink
from runtime.sinks.virtual_camera import VirtualCameraSink
from runtime.video_writer import VideoWriter
from tests.process_signals import signal_midway
from tracking.driving_frame import DrivingFrame
from tracking.tracker import FrameResult

REPO = Path(__file__).resolve().parents[1]
OUT = 64  # the live output side used in these tests (a 16 x 16 render)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def face_data(shared_data):
    from tracking.face_model import load_face_model_data
    return load_face_model_data(shared_data / "ict_face_model.npz")


@pytest.fixture(scope="module")
def d0(shared_data):
    return shared_data / "video" / "d0.mp4"


@pytest.fixture(scope="module")
def tracker(d0, face_data):
    """One tracker for the module, its identity already fitted (as `splatcam bench` does), so no
    test's timing includes the one-off identity fit."""
    from runtime.benchmarks import warm_up_tracker
    from tracking.tracker import LiveTracker

    with VideoFileSource(d0) as probe:
        tracker = LiveTracker(probe.width, probe.height, data=face_data)
    warm_up_tracker(tracker, str(d0))
    assert tracker.identity_ready
    yield tracker
    tracker.close()


def make_loop(source, tracker, demo_avatar, sinks, config, **kw):
    avatar = load_avatar(demo_avatar)
    renderer = AvatarRenderer(avatar, create_backend("torch", avatar), raster="cpu", size=OUT)
    driver = LiveDriver.from_config(avatar_neutral(avatar), config)
    return LiveLoop(source, tracker, driver, renderer, sinks, config=config, owns_tracker=False, **kw)


def decoded_frames(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# Sequential, and overlapped: on a CPU the main thread then tracks and generates frame t+1 while
# the worker rasterizes and upsamples frame t, so each frame's Gaussians must reach its own picture.
@pytest.mark.parametrize("overlap", [False, True], ids=["sequential", "overlapped"])
def test_video_to_virtual_camera_and_file_at_the_requested_rate(fake_virtual_camera, tracker, demo_avatar, d0,
                                                                tmp_path, overlap):
    fps, frames = 5.0, 12
    out = tmp_path / "live.mp4"
    logged, drives = [], []
    sinks = [VirtualCameraSink(OUT, OUT, fps, backend=fake_virtual_camera.NAME), FileSink(out, fps)]
    config = LiveConfig(fps=fps, max_frames=frames, report_after_frames=5, overlap=overlap)
    loop = make_loop(VideoFileSource(d0, pace=True, loop=True), tracker, demo_avatar, sinks, config,
                     log=logged.append, on_frame=lambda frame, result, drive: drives.append(drive))
    report = loop.run()

    camera = fake_virtual_camera.instances[0]
    assert camera.closed == 1 and camera.fourcc == pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)
    assert (camera.width, camera.height, camera.fps) == (OUT, OUT, fps)
    assert report.frames == len(camera.frames) == frames and not report.interrupted
    images = [f.reshape(OUT, OUT, 3) for f in camera.frames]
    assert all(f.dtype == np.uint8 and f.size == OUT * OUT * 3 for f in camera.frames)
    # Each picture is the avatar rendered for that frame's own retargeted coefficients: compared
    # with renders through the avatar's modules directly (not the loop's inference backend), each
    # is within rounding of its own drive's and nearer to it than to any other frame's.
    avatar = load_avatar(demo_avatar)
    pipeline = RenderPipeline(ModuleStages(avatar.model.eval(), avatar.sr.eval()))
    view = output_camera(avatar.camera, OUT, avatar.sr.factor)
    with torch.no_grad():
        expected = [to_uint8(pipeline.render(torch.from_numpy(d.expression), torch.from_numpy(
            np.r_[d.rotation, d.translation].astype(np.float32)), view).rgb).astype(int) for d in drives]
    for i, img in enumerate(images):
        errors = [np.abs(img.astype(int) - e).mean() for e in expected]
        assert np.abs(img.astype(int) - expected[i]).max() <= 2, i
        assert all(errors[i] < e for j, e in enumerate(errors) if not np.array_equal(expected[j], expected[i])), i
    assert len({img.tobytes() for img in images}) > 1  # the face moved
    # The loop takes a frame every 1/fps s (the video delivers 25 per second).
    intervals = np.diff(camera.times)
    assert np.median(intervals) == pytest.approx(1 / fps, rel=0.15), intervals
    assert report.tracked == frames and report.dropped > 0

    written = decoded_frames(out)
    assert len(written) == frames and written[0].shape == (OUT, OUT, 3)
    assert np.abs(written[-1].astype(float) - images[-1]).mean() < 6  # H.264 of the same picture

    summary = report.summary
    assert list(summary.stages_ms) == ["capture", "track", "generate", "rasterize", "sr", "sink"]
    assert summary.frames == frames
    assert any("delay it by" in line for line in logged), logged


@pytest.fixture
def terminal_sigint():
    """Python's own SIGINT handler, as under a terminal. A test run started in the background by
    a non-interactive shell inherits SIGINT ignored; Python then leaves it ignored and
    _thread.interrupt_main does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("terminal_sigint")
def test_ctrl_c_closes_everything_and_finalises_the_file(fake_virtual_camera, tracker, demo_avatar, d0, tmp_path):
    out = tmp_path / "live.mp4"
    sinks = [VirtualCameraSink(OUT, OUT, 25, backend=fake_virtual_camera.NAME), FileSink(out, 25)]
    # The overlapped path (render worker thread).
    loop = make_loop(VideoFileSource(d0, pace=True), tracker, demo_avatar, sinks,
                     LiveConfig(overlap=True, report_after_frames=0))
    threads_before = set(threading.enumerate())
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        report = loop.run()
    finally:
        timer.cancel()
    assert report.interrupted and report.frames > 3
    assert report.frames < 60  # stopped early: d0 has 78 frames
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the loop's handler is gone
    assert fake_virtual_camera.instances[0].closed == 1
    assert len(fake_virtual_camera.instances[0].frames) == report.frames
    assert len(decoded_frames(out)) == report.frames
    assert not out.with_name(f".{out.name}.partial.mp4").exists()
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]


def test_face_lost_holds_then_eases_to_neutral(tracker, demo_avatar, d0, tmp_path):
    """d0's first second, then 1.6 s without a face: the avatar holds the last expression for
    hold_s, then eases to its neutral within ease_s."""
    clip = tmp_path / "lost.mp4"
    with VideoFileSource(d0) as source, VideoWriter(clip, 25, source.width, source.height) as writer:
        for _ in range(30):
            writer.write(source.read().rgb)
        for _ in range(40):
            writer.write(np.full((source.height, source.width, 3), 90, np.uint8))
    seen = []
    config = LiveConfig(hold_s=0.3, ease_s=0.5, calibration_s=0.3, report_after_frames=0)
    loop = make_loop(VideoFileSource(clip, pace=True), tracker, demo_avatar, [], config,
                     on_frame=lambda frame, result, drive: seen.append((frame, result.valid, drive)))
    loop.run()
    neutral = avatar_neutral(load_avatar(demo_avatar))
    assert not any(valid for frame, valid, _ in seen if frame.index >= 30)  # no face in the blank part
    # The face is lost for good after the last valid frame (a fit rejected now and then before
    # that would only restart the hold).
    last_valid = max(i for i, (_, valid, _) in enumerate(seen) if valid)
    assert sum(valid for _, valid, _ in seen) >= 5, [valid for _, valid, _ in seen]
    lost = seen[last_valid + 1:]
    last = seen[last_valid][2]
    t_lost = lost[0][0].timestamp
    assert np.abs(last.expression - neutral.expression).max() > 1e-3  # a tracked face, not the neutral
    assert lost[-1][0].timestamp - t_lost > 0.3 + 0.5 + 0.1, "the blank part is long enough to ease fully"
    for frame, _, drive in lost:
        lost_for = frame.timestamp - t_lost
        if lost_for < 0.3:
            np.testing.assert_array_equal(drive.expression, last.expression)
            np.testing.assert_array_equal(drive.translation, last.translation)
        elif lost_for > 0.3 + 0.5:
            np.testing.assert_allclose(drive.expression, neutral.expression, atol=1e-6)
            np.testing.assert_allclose(drive.rotation, neutral.rotation, atol=1e-6)
            np.testing.assert_allclose(drive.translation, neutral.translation, atol=1e-6)
    distances = [np.abs(d.expression - neutral.expression).sum() for _, _, d in lost]
    assert all(b <= a + 1e-6 for a, b in zip(distances, distances[1:]))  # easing only goes towards neutral


class StallingSource:
    """d0, paced, going silent for a while after a few frames, as a webcam does while
    capture/webcam.py reopens it after it was unplugged (no webcam exists on this machine)."""

    def __init__(self, path, after, pause_s):
        self._source = VideoFileSource(path, pace=True, loop=True)
        self.name, self.fps = "stalling d0", self._source.fps
        self.width, self.height = self._source.width, self._source.height
        self._after, self._pause_s, self._count = after, pause_s, 0
        self._closed = threading.Event()

    def read(self):
        self._count += 1
        if self._count == self._after and self._closed.wait(self._pause_s):
            return None
        return self._source.read()

    def close(self):
        self._closed.set()
        self._source.close()


def test_a_stalled_source_is_announced_and_the_loop_goes_on(tracker, demo_avatar, d0):
    logged = []
    config = LiveConfig(max_frames=10, stall_notice_s=0.3, report_after_frames=0)
    loop = make_loop(StallingSource(d0, after=4, pause_s=0.8), tracker, demo_avatar, [], config, log=logged.append)
    report = loop.run()
    assert report.frames == 10
    assert any("stalling d0: no frame for" in line for line in logged), logged
    assert any("frames are coming again" in line for line in logged), logged


class ScriptedWindow:
    """The preview window's interface (poll / send / close) with key presses scripted by frame:
    no display exists on this machine, so OpenCV's window cannot be opened here."""

    def __init__(self, script):
        self.script, self.shown, self.closed = dict(script), [], 0

    def poll(self):
        return self.script.pop(len(self.shown), [])  # each key once, after that many frames

    def send(self, rgb):
        self.shown.append(rgb)

    def close(self):
        self.closed += 1


def test_window_keys_recalibrate_toggle_overlay_report_and_quit(tracker, demo_avatar, d0, face_data):
    from runtime.live_loop import REPORT_LATENCY
    from runtime.sinks.window import QUIT, RECALIBRATE, TOGGLE_OVERLAY
    from tracking.overlay import OverlayRenderer

    window = ScriptedWindow({3: [RECALIBRATE], 4: [TOGGLE_OVERLAY], 6: [REPORT_LATENCY], 8: [QUIT]})
    logged = []
    config = LiveConfig(report_after_frames=0, calibration_s=0.2)
    loop = make_loop(VideoFileSource(d0, pace=True, loop=True), tracker, demo_avatar, [], config, window=window,
                     log=logged.append,
                     overlay=lambda: OverlayRenderer(face_data, tracker.camera, tracker.fitter.identity.numpy()))
    recalibrations = []
    driver_recalibrate = loop.driver.recalibrate
    loop.driver.recalibrate = lambda: (recalibrations.append(1), driver_recalibrate())
    report = loop.run()
    assert report.frames == 8 and window.closed == 1  # quit before the 9th frame
    assert len(recalibrations) == 1
    assert [img.shape for img in window.shown[:4]] == [(OUT, OUT, 3)] * 4
    # With the overlay on, the camera picture (scaled to the output height) sits beside the avatar.
    assert all(img.shape == (OUT, 2 * OUT, 3) for img in window.shown[5:])
    assert any("recalibrating" in line for line in logged)
    assert any("delay it by" in line for line in logged)


def frame_result(expression, rotation, translation, valid=True):
    frame = DrivingFrame(np.asarray(expression, np.float32), np.asarray(rotation, np.float32),
                         np.asarray(translation, np.float32))
    return FrameResult(frame, None, valid)


def test_driver_easing_against_an_independent_slerp():
    rng = np.random.default_rng(3)
    neutral = DrivingFrame(np.zeros(53, np.float32), np.array([0.0, 0.1, 0.0], np.float32),
                           np.array([0.0, 0.0, 0.5], np.float32))
    driver = LiveDriver(neutral, calibration_s=0.5, hold_s=0.2, ease_s=1.0, recover_s=0.4)
    # Calibration: the driver's own resting face maps onto the avatar's neutral.
    rest = frame_result(rng.uniform(0, 0.2, 53), [0.05, -0.1, 0.02], [0.1, 0.0, 2.0])
    for k in range(6):
        out = driver(rest, k * 0.1)
    assert driver.calibrated
    np.testing.assert_allclose(out.expression, 0, atol=1e-6)
    np.testing.assert_allclose(Rotation.from_rotvec(out.rotation).as_matrix(),
                               Rotation.from_rotvec(neutral.rotation).as_matrix(), atol=1e-6)
    np.testing.assert_allclose(out.translation, neutral.translation, atol=1e-6)

    moved = frame_result(rng.uniform(0.3, 1.0, 53), [0.3, 0.2, -0.1], [0.2, 0.1, 2.1])
    last = driver(moved, 0.7)
    # The head moves as the driver's moved, on the avatar's anchor; depth stays at the anchor
    # unless asked for (the driver's fitted depth also reacts to mouth opening).
    np.testing.assert_allclose(last.translation, [0.1, 0.1, 0.5], atol=1e-6)
    following = LiveDriver(neutral, calibration_s=0.5, follow_depth=True)
    for k in range(6):
        following(rest, k * 0.1)
    np.testing.assert_allclose(following(moved, 0.7).translation, [0.1, 0.1, 0.6], atol=1e-6)
    lost = frame_result(np.zeros(53), [0, 0, 0], [0, 0, 0], valid=False)
    t_lost = 0.8
    slerp = Slerp([0, 1], Rotation.from_rotvec([neutral.rotation, last.rotation]))
    for dt in (0.0, 0.1, 0.2, 0.45, 0.7, 0.95, 1.2, 1.5):
        out = driver(lost, t_lost + dt)
        s = np.clip((dt - 0.2) / 1.0, 0, 1)
        w = 1 - (3 * s * s - 2 * s ** 3)  # weight of the held face
        np.testing.assert_allclose(out.expression, w * last.expression, atol=1e-5)
        np.testing.assert_allclose(out.translation, w * last.translation + (1 - w) * neutral.translation, atol=1e-5)
        np.testing.assert_allclose(Rotation.from_rotvec(out.rotation).as_matrix(),
                                   slerp(w).as_matrix(), atol=1e-5)
    # The face comes back after easing began: the output blends into the tracked face.
    eased = out
    back = driver(moved, t_lost + 1.6)
    np.testing.assert_allclose(back.expression, eased.expression, atol=1e-6)  # blend starts where it was
    mid = driver(moved, t_lost + 1.8)
    np.testing.assert_allclose(mid.expression, 0.5 * eased.expression + 0.5 * last.expression, atol=1e-5)
    np.testing.assert_allclose(driver(moved, t_lost + 2.1).expression, last.expression, atol=1e-6)


def test_latency_report_names_the_audio_delay():
    p = lambda v: Percentiles(v, v * 1.2, v * 1.5)  # noqa: E731
    summary = LatencySummary(frames=100, fps=24.7, dropped=3, end_to_end_ms=p(87.4),
                             stages_ms={"capture": p(5.0), "track": p(30.0)})
    assert audio_delay_ms(summary) == 90
    text = format_latency_report(summary)
    assert "p50 87 ms" in text and "delay it by 90 ms" in text and "24.7 fps" in text


def test_live_command_end_to_end_and_bad_input(demo_avatar, d0, tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    code = main(["live", "--avatar", str(demo_avatar), "--video", str(d0), "--out", str(out),
                 "--backend", "torch", "--max-frames", "4", "--size", str(OUT)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(decoded_frames(out)) == 4 and decoded_frames(out)[0].shape == (OUT, OUT, 3)
    for args, message in [
        (["--video", str(tmp_path / "nope.mp4"), "--out", str(out)], "no such video file"),
        (["--video", str(d0), "--out", str(tmp_path / "x.avi")], "must end in .mp4"),
        (["--video", str(d0), "--out", str(out), "--fps", "0"], "--fps must be a positive number"),
        (["--video", str(d0), "--out", str(out), "--size", "30"], "multiple of 4"),
        (["--avatar", str(tmp_path / "none"), "--video", str(d0), "--out", str(out)], "no such avatar directory"),
    ]:
        code = main(["live", *args])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (args, err)
    assert not (tmp_path / "x.avi").exists()


def test_run_live_is_the_live_command(tmp_path):
    result = subprocess.run([sys.executable, "run_live.py", "--video", str(tmp_path / "nope.mp4")],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip() == f"splatcam live: error: {tmp_path / 'nope.mp4'}: no such video file"


@pytest.mark.parametrize("signum, name", [(signal.SIGINT, "Ctrl+C"), (signal.SIGTERM, "SIGTERM")])
def test_a_signal_ends_the_live_command_cleanly(demo_avatar, shared_data, tmp_path, signum, name):
    """`run_live.py` in its own process, sent a real SIGINT (Ctrl+C) or SIGTERM while it runs
    (d6 lasts 33 s): it stops after the frame in flight, exits 0 and leaves a finished MP4 with
    every sent frame."""
    out = tmp_path / "signal.mp4"
    code, err = signal_midway([sys.executable, "run_live.py", "--avatar", str(demo_avatar), "--video",
                               str(shared_data / "video" / "d6.mp4"), "--out", str(out), "--backend", "onnxruntime"],
                              ready="Ctrl+C stops", signum=signum, delay_s=1.5)
    assert code == 0, err
    summary = next(line for line in err.splitlines() if line.startswith("live:") and "frames sent" in line)
    assert summary.endswith(f"stopped by {name}"), summary
    sent = int(summary.split()[1])
    assert 3 < sent < 400
    assert len(decoded_frames(out)) == sent
    assert not out.with_name(f".{out.name}.partial.mp4").exists()
