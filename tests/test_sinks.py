"""Output sinks: virtual camera (through a registered fake pyvirtualcam backend), file, window, null."""
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.util import encode_fourcc

from capture.devices import list_video_devices
from capture.video_file import VideoFileSource
from core.errors import UserError
from runtime.sinks.base import Sink, SinkUnavailable
from runtime.sinks.file import FileSink
from runtime.sinks.null import NullSink
from runtime.sinks.virtual_camera import INSTALL, MODPROBE, VirtualCameraSink
from runtime.sinks.window import ESC, QUIT, RECALIBRATE, TOGGLE_OVERLAY, KeyMap, WindowSink
from tests.conftest import REPO


@pytest.fixture(scope="module")
def d0_frames(shared_data):
    with VideoFileSource(shared_data / "video" / "d0.mp4") as source:
        return [source.read().rgb[::4, ::4].copy() for _ in range(12)]  # 128 x 128


# ---------------------------------------------------------------- virtual camera

def test_virtual_camera_sends_rgb_frames_of_the_right_size(fake_virtual_camera, d0_frames):
    with VirtualCameraSink(128, 128, 25, backend=fake_virtual_camera.NAME, device="fake7") as sink:
        assert sink.device == "fake7"
        for rgb in d0_frames:
            sink.send(rgb)
        with pytest.raises(ValueError, match="frame is 64x64, this sink was opened for 128x128"):
            sink.send(np.zeros((64, 64, 3), np.uint8))
        with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
            sink.send(np.zeros((128, 128, 3), np.float32))
    backend = fake_virtual_camera.instances[0]
    assert backend.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)
    assert (backend.width, backend.height, backend.fps, backend.closed) == (128, 128, 25, 1)
    assert sink.frames_sent == len(backend.frames) == len(d0_frames)
    for received, sent in zip(backend.frames, d0_frames):
        np.testing.assert_array_equal(received.reshape(128, 128, 3), sent)


def test_virtual_camera_paced_sends_at_the_requested_rate(fake_virtual_camera, d0_frames):
    with VirtualCameraSink(128, 128, 50, backend=fake_virtual_camera.NAME, pace=True) as sink:
        for rgb in d0_frames:
            sink.send(rgb)
    interval = np.diff(fake_virtual_camera.instances[0].times).mean()
    assert 0.8 / 50 < interval < 1.5 / 50, f"mean interval {interval * 1000:.1f} ms at 50 fps"


def test_virtual_camera_unknown_backend(fake_virtual_camera):
    with pytest.raises(ValueError, match="unknown virtual camera backend 'nope'"):
        VirtualCameraSink(64, 64, 30, backend="nope")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2loopback is Linux only")
def test_missing_v4l2loopback_says_how_to_load_it():
    if any(d.loopback for d in list_video_devices()):
        pytest.skip("this machine has a v4l2loopback device")
    for device in (None, "/dev/video7"):
        with pytest.raises(SinkUnavailable) as error:
            VirtualCameraSink(640, 480, 30, device=device)  # the real pyvirtualcam v4l2loopback backend
        message = str(error.value)
        assert MODPROBE in message and INSTALL in message and "\n" not in message
        assert MODPROBE in (REPO / "README.md").read_text()  # the fix printed is the one documented
        assert isinstance(error.value, UserError)  # the CLI prints it as one line, exit 2


# ---------------------------------------------------------------- file and null

def test_file_sink_writes_a_video_that_reads_back(tmp_path, d0_frames):
    out = tmp_path / "out.mp4"
    with FileSink(out, fps=25) as sink:
        for rgb in d0_frames:
            sink.send(rgb)
        with pytest.raises(ValueError, match="frame is 64x64"):
            sink.send(np.zeros((64, 64, 3), np.uint8))
    assert sink.frames_written == len(d0_frames)
    with VideoFileSource(out) as video:
        assert (video.fps, video.width, video.height) == (25.0, 128, 128)
        back = [f.rgb for f in video]
    assert len(back) == len(d0_frames)
    for got, sent in zip(back, d0_frames):
        assert np.abs(got.astype(int) - sent.astype(int)).mean() < 4.0  # H.264 at crf 18
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_file_sink_keeps_frames_when_the_loop_is_interrupted(tmp_path, d0_frames):
    out = tmp_path / "live.mp4"
    with pytest.raises(KeyboardInterrupt):
        with FileSink(out, fps=25) as sink:
            for rgb in d0_frames[:5]:
                sink.send(rgb)
            raise KeyboardInterrupt
    with VideoFileSource(out) as video:
        assert len(list(video)) == 5
    with pytest.raises(RuntimeError, match="already closed"):
        sink.send(d0_frames[0])


def test_file_sink_edge_cases(tmp_path):
    with pytest.raises(ValueError, match="must end in .mp4"):
        FileSink(tmp_path / "out.avi", fps=25)
    FileSink(tmp_path / "empty.mp4", fps=25).close()
    assert not (tmp_path / "empty.mp4").exists()


def test_null_sink_counts_and_checks():
    sink = NullSink()
    assert isinstance(sink, Sink)
    sink.send(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        sink.send(np.zeros((4, 4), np.uint8))
    assert sink.frames_sent == 1


# ---------------------------------------------------------------- window

def test_key_map():
    keys = KeyMap()
    assert [keys.action(ord(c)) for c in "cCoOqQ"] == [RECALIBRATE] * 2 + [TOGGLE_OVERLAY] * 2 + [QUIT] * 2
    assert keys.action(ESC) == QUIT
    assert keys.action(-1) is None and keys.action(ord("x")) is None
    assert keys.action(0x100000 | ord("q")) == QUIT  # waitKey may report modifier bits above the key code
    assert KeyMap({ord(" "): RECALIBRATE}).action(ord(" ")) == RECALIBRATE


@pytest.mark.skipif(sys.platform.startswith(("win", "darwin")), reason="X11 display check is for Linux")
def test_window_without_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    with pytest.raises(SinkUnavailable, match="no display for the preview window"):
        WindowSink()
    # A display that is set but cannot be reached: OpenCV's Qt would abort the process, so the
    # check runs in a child process and this one survives with a clear error.
    if Path("/tmp/.X11-unix/X93").exists():
        pytest.skip("display :93 exists here")
    monkeypatch.setenv("DISPLAY", ":93")
    with pytest.raises(SinkUnavailable, match="cannot open a window on display ':93'") as error:
        WindowSink()
    assert "\n" not in str(error.value)
