"""Frame sources, the newest-frame grabber, webcam reopening and device listing."""
import os
import queue
import struct
import threading
import time

import cv2
import numpy as np
import pytest

from capture.devices import (CAP_DEVICE_CAPS, CAP_VIDEO_CAPTURE, CAP_VIDEO_OUTPUT, describe_devices,
                             list_video_devices, parse_capability)
from capture.frame import Frame
from capture.image_folder import ImageFolderSource
from capture.latest_frame import LatestFrameGrabber
from capture.pacing import Pacer
from capture.frame_source import CaptureError
from capture.source import SourceOptions, open_source, webcam_index
from capture.video_file import VideoFileSource
from capture.webcam import ReopenPolicy, WebcamSource

D0_FRAMES, D0_SIZE, D0_FPS = 78, 512, 25.0


@pytest.fixture(scope="module")
def d0(shared_data):
    return shared_data / "video" / "d0.mp4"


# ---------------------------------------------------------------- video file

def test_video_file_reads_every_frame_with_timestamps(d0):
    with VideoFileSource(d0) as source:
        assert (source.fps, source.width, source.height, source.frame_count) == (D0_FPS, D0_SIZE, D0_SIZE, D0_FRAMES)
        frames = list(source)
    assert len(frames) == D0_FRAMES
    assert all(f.rgb.shape == (D0_SIZE, D0_SIZE, 3) and f.rgb.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(D0_FRAMES))
    stamps = np.array([f.timestamp for f in frames])
    assert np.all(np.diff(stamps) > 0)
    media = np.array([f.source_time for f in frames])
    np.testing.assert_allclose(np.diff(media), 1 / D0_FPS, atol=1e-3)
    assert media[0] == 0.0

    # The pixels are the picture: OpenCV's own decoder (another YUV->RGB path) agrees closely.
    capture = cv2.VideoCapture(str(d0))
    for i in (0, 40):
        capture.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, bgr = capture.read()
        assert ok
        diff = np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(int) - frames[i].rgb.astype(int))
        assert diff.mean() < 2.0, f"frame {i}: mean difference {diff.mean():.2f} to OpenCV's decode"
    capture.release()


def test_video_file_paced_delivers_at_the_file_rate(d0):
    with VideoFileSource(d0, pace=True) as source:
        stamps = [source.read().timestamp for _ in range(13)]
    elapsed = stamps[-1] - stamps[0]
    expected = 12 / D0_FPS  # 0.48 s
    assert 0.85 * expected < elapsed < 1.6 * expected, f"13 paced frames took {elapsed:.3f} s, expected ~{expected:.2f}"


def test_video_file_loops_with_increasing_index(d0):
    with VideoFileSource(d0, loop=True) as source:
        frames = [source.read() for _ in range(D0_FRAMES + 3)]
    assert [f.index for f in frames] == list(range(D0_FRAMES + 3))
    assert frames[D0_FRAMES].source_time == 0.0
    np.testing.assert_array_equal(frames[D0_FRAMES].rgb, frames[0].rgb)


def test_video_file_bad_input_gives_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such video file"):
        VideoFileSource(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    with pytest.raises(ValueError, match="not a readable video") as error:
        VideoFileSource(text)
    assert str(text) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match="not a readable video"):
        open_source(str(text))


def test_pacer_does_not_burst_after_falling_behind():
    pacer = Pacer(fps=100, stop=threading.Event())
    assert pacer.wait(0.00)
    time.sleep(0.1)  # a reader ten frames late
    t0 = time.perf_counter()
    assert pacer.wait(0.01)
    overdue = time.perf_counter() - t0
    assert pacer.wait(0.02)
    next_gap = time.perf_counter() - t0
    assert overdue < 0.005  # the late frame comes at once...
    assert next_gap > 0.007  # ...and the one after it a period later, not in a burst


def test_pacer_wait_is_interrupted_by_stop():
    stop = threading.Event()
    pacer = Pacer(fps=0.5, stop=stop)  # the second frame is due in 2 s
    assert pacer.wait(0.0)
    threading.Timer(0.05, stop.set).start()
    t0 = time.perf_counter()
    assert not pacer.wait(2.0)
    assert time.perf_counter() - t0 < 1.0


# ---------------------------------------------------------------- image folder and factory

def test_image_folder_reads_images_in_name_order(tmp_path, d0):
    with VideoFileSource(d0) as video:
        originals = [video.read().rgb[::4, ::4].copy() for _ in range(3)]
    for i, rgb in enumerate(originals):
        cv2.imwrite(str(tmp_path / f"frame_{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (tmp_path / "readme.txt").write_text("not an image")
    source = open_source(tmp_path, SourceOptions(fps=10, loop=True))
    assert isinstance(source, ImageFolderSource)
    assert (source.width, source.height, len(source.files)) == (128, 128, 3)
    frames = [source.read() for _ in range(4)]
    for frame, rgb in zip(frames, originals + originals[:1]):
        np.testing.assert_array_equal(frame.rgb, rgb)  # PNG is lossless
    assert [f.source_time for f in frames] == [0.0, 0.1, 0.2, 0.0]
    assert ImageFolderSource(tmp_path).read() is not None and len(list(ImageFolderSource(tmp_path))) == 3


def test_image_folder_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        ImageFolderSource(tmp_path)
    (tmp_path / "a.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="a.png: not a readable image"):
        ImageFolderSource(tmp_path)
    with pytest.raises(FileNotFoundError):
        ImageFolderSource(tmp_path / "nowhere")


def test_source_specs():
    assert webcam_index(0) == 0 and webcam_index("webcam:2") == 2 and webcam_index("1") == 1
    assert webcam_index("clip.mp4") is None
    with pytest.raises(ValueError, match="webcam:N"):
        webcam_index("webcam:front")


# ---------------------------------------------------------------- newest-frame grabber

class StepSource:
    """A source the test feeds by hand; read() blocks until a frame is pushed or it is closed."""

    name, fps, width, height = "steps", 30.0, 4, 4

    def __init__(self):
        self.pushed = queue.Queue()
        self.closed = threading.Event()

    def push(self, index):
        self.pushed.put(index)

    def read(self):
        while not self.closed.is_set():
            try:
                item = self.pushed.get(timeout=0.01)
            except queue.Empty:
                continue
            if item is None:
                return None
            if isinstance(item, Exception):
                raise item
            return Frame(np.full((4, 4, 3), item % 256, np.uint8), time.perf_counter(), item)
        return None

    def close(self):
        self.closed.set()


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.002)


def test_grabber_keeps_only_the_newest_frame():
    source = StepSource()
    with LatestFrameGrabber(source) as grabber:
        for i in range(5):
            source.push(i)
        wait_until(lambda: grabber.captured == 5)
        frame = grabber.get(timeout=1)
        assert frame.index == 4 and grabber.dropped == 4
        assert grabber.get(timeout=0.05) is None and not grabber.ended  # nothing new: timeout
        source.push(5)
        assert grabber.get(timeout=1).index == 5
        source.push(6)
        source.push(None)  # end of stream: the last frame is still handed out
        wait_until(lambda: grabber.captured == 7)
        assert grabber.get(timeout=1).index == 6
        assert grabber.get(timeout=1) is None and grabber.ended
        assert (grabber.captured, grabber.delivered, grabber.dropped) == (7, 3, 4)


class FastSource:
    name, fps, width, height = "fast", 1000.0, 8, 8

    def __init__(self, count):
        self.count, self.produced = count, -1
        self.closed = False

    def read(self):
        if self.closed or self.produced + 1 >= self.count:
            return None
        time.sleep(0.001)
        self.produced += 1
        return Frame(np.zeros((8, 8, 3), np.uint8), time.perf_counter(), self.produced)

    def close(self):
        self.closed = True


def test_grabber_with_fast_source_and_slow_consumer():
    source = FastSource(count=300)
    received = []
    with LatestFrameGrabber(source) as grabber:
        while (frame := grabber.get(timeout=2)) is not None:
            newest = source.produced
            # The frame is the newest one read, or the one before if the next read just finished.
            assert frame.index >= newest - 1
            assert not received or frame.index > received[-1]
            received.append(frame.index)
            time.sleep(0.015)
    assert grabber.ended and received[-1] == 299
    assert grabber.dropped == 300 - len(received) > 100
    assert grabber.captured == grabber.delivered + grabber.dropped == 300


def test_grabber_stop_interrupts_a_blocked_read_and_joins():
    source = StepSource()
    grabber = LatestFrameGrabber(source).start()
    t0 = time.perf_counter()
    grabber.stop()
    assert time.perf_counter() - t0 < 1.0
    assert not grabber._thread.is_alive() and source.closed.is_set()
    assert grabber.get(timeout=0.1) is None and grabber.ended


def test_grabber_raises_source_errors_to_the_consumer():
    source = StepSource()
    with LatestFrameGrabber(source) as grabber:
        source.push(0)
        assert grabber.get(timeout=1).index == 0
        source.push(OSError("USB bus reset"))
        with pytest.raises(CaptureError, match="capture from steps failed: OSError: USB bus reset") as error:
            grabber.get(timeout=2)
        assert isinstance(error.value.__cause__, OSError)


def test_grabber_over_a_paced_video_drops_frames_for_a_slow_consumer(d0):
    with LatestFrameGrabber(VideoFileSource(d0, pace=True, loop=True)) as grabber:
        frames = []
        t_end = time.perf_counter() + 0.8
        while time.perf_counter() < t_end:
            frames.append(grabber.get(timeout=1))
            time.sleep(0.1)  # a 10 fps consumer of a 25 fps camera
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))
    assert grabber.dropped >= len(frames)  # more than half the frames were never processed
    stamps = [f.timestamp for f in frames]
    assert np.all(np.diff(stamps) > 0.05)  # each frame was captured after the previous was taken


# ---------------------------------------------------------------- webcam (no real webcam exists here)

class FakeDevice:
    """A camera that vanishes after `reads_before_loss` frames and is back after `failed_opens`."""

    def __init__(self, reads_before_loss, failed_opens):
        self.reads_before_loss, self.failed_opens = reads_before_loss, failed_opens
        self.present, self.reads, self.open_times, self.generation = True, 0, [], 0


def fake_video_capture(device):
    class FakeVideoCapture:
        def __init__(self, index, api=None):
            device.open_times.append(time.perf_counter())
            if not device.present and len(device.open_times) > 1 + device.failed_opens:
                device.present, device.generation = True, device.generation + 1
            self.opened = device.present

        def isOpened(self):
            return self.opened

        def set(self, prop, value):
            return True

        def get(self, prop):
            return {cv2.CAP_PROP_FRAME_WIDTH: 6, cv2.CAP_PROP_FRAME_HEIGHT: 4, cv2.CAP_PROP_FPS: 30}.get(prop, 0)

        def grab(self):
            if device.reads_before_loss is not None and device.reads >= device.reads_before_loss:
                device.present, device.reads_before_loss = False, None
            if not (self.opened and device.present):
                return False
            device.reads += 1
            return True

        def retrieve(self):
            return True, np.full((4, 6, 3), device.generation, np.uint8)

        def release(self):
            self.opened = False

    return FakeVideoCapture


def test_webcam_reopens_with_backoff_after_the_device_disappears(monkeypatch):
    # A real webcam cannot exist on this machine (no /dev/video*): cv2.VideoCapture is replaced
    # by a fake device that disappears after 3 frames and needs 3 failed opens to come back.
    device = FakeDevice(reads_before_loss=3, failed_opens=3)
    monkeypatch.setattr(cv2, "VideoCapture", fake_video_capture(device))
    policy = ReopenPolicy(first_delay_s=0.01, max_delay_s=0.04, factor=2.0)
    with WebcamSource(0, reopen=policy) as camera:
        assert (camera.width, camera.height, camera.fps) == (6, 4, 30.0)
        frames = [camera.read() for _ in range(6)]
    assert [f.index for f in frames] == list(range(6))
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [0, 0, 0, 1, 1, 1]  # frames 3.. from the reopened device
    assert camera.reopens == 1
    gaps = np.diff(device.open_times[1:])  # the initial open, then the reopen attempts
    assert len(device.open_times) == 1 + 4
    np.testing.assert_array_less(np.array([0.02, 0.04, 0.04]) * 0.8, gaps)  # waits double, up to the cap


def test_webcam_gives_up_after_the_policy_timeout(monkeypatch):
    device = FakeDevice(reads_before_loss=1, failed_opens=10**6)
    monkeypatch.setattr(cv2, "VideoCapture", fake_video_capture(device))
    camera = WebcamSource(0, reopen=ReopenPolicy(first_delay_s=0.01, max_delay_s=0.02, give_up_after_s=0.1))
    assert camera.read() is not None
    with pytest.raises(CaptureError, match="webcam 0 stopped delivering frames and did not come back within 0.1 s"):
        camera.read()


def test_webcam_close_interrupts_reconnecting(monkeypatch):
    device = FakeDevice(reads_before_loss=0, failed_opens=10**6)
    monkeypatch.setattr(cv2, "VideoCapture", fake_video_capture(device))
    camera = WebcamSource(0, reopen=ReopenPolicy(first_delay_s=0.5, max_delay_s=5.0))
    threading.Timer(0.1, camera.close).start()
    t0 = time.perf_counter()
    assert camera.read() is None
    assert time.perf_counter() - t0 < 0.4


def test_missing_webcam_is_a_clear_error():
    if list_video_devices():
        pytest.skip("this machine has video devices")
    with pytest.raises(ValueError, match="webcam 0: cannot open it; no video devices found") as error:
        open_source(0)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- device listing

def capability_bytes(driver, card, caps, device_caps):
    return struct.pack("=16s32s32sIII3I", driver, card, b"usb-0000:00:14.0-1", 0x60800, caps, device_caps, 0, 0, 0)


def test_parse_capability_prefers_device_caps():
    camera = parse_capability(capability_bytes(b"uvcvideo", b"Integrated Camera",
                                               CAP_DEVICE_CAPS | CAP_VIDEO_CAPTURE | 0x00800000, CAP_VIDEO_CAPTURE))
    assert (camera.driver, camera.card, camera.can_capture) == ("uvcvideo", "Integrated Camera", True)
    metadata = parse_capability(capability_bytes(b"uvcvideo", b"Integrated Camera",
                                                 CAP_DEVICE_CAPS | CAP_VIDEO_CAPTURE, 0x00800000))
    assert not metadata.can_capture  # the second node of a UVC camera carries metadata only
    old_kernel = parse_capability(capability_bytes(b"v4l2 loopback", b"splatcam", CAP_VIDEO_OUTPUT, 0))
    assert old_kernel.caps == CAP_VIDEO_OUTPUT and not old_kernel.can_capture


def test_list_video_devices_reads_sysfs(tmp_path):
    dev, sysfs, virtual = tmp_path / "dev", tmp_path / "class", tmp_path / "devices" / "virtual" / "video4linux"
    for d in (dev, sysfs, virtual / "video10"):
        d.mkdir(parents=True)
    (sysfs / "video2").mkdir()
    (sysfs / "video2" / "name").write_text("Integrated Camera\n")
    (virtual / "video10" / "name").write_text("splatcam\n")
    os.symlink(virtual / "video10", sysfs / "video10")
    for name in ("video10", "video2", "video-meta", "vcs"):
        (dev / name).write_text("")  # plain files: the ioctl fails, so capture ability is unknown
    devices = list_video_devices(str(dev), str(sysfs))
    assert [(d.index, d.name, d.loopback, d.can_capture) for d in devices] == [
        (2, "Integrated Camera", False, None), (10, "splatcam", True, None)]
    line = describe_devices(devices)
    assert "'Integrated Camera': not queryable" in line and "'splatcam': virtual camera (v4l2loopback)" in line
