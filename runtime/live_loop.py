"""The live loop: capture -> track -> retarget -> generate -> rasterize -> SR -> sinks.

    loop = LiveLoop(source, tracker, driver, renderer, sinks=[camera, file], window=window,
                    config=LiveConfig(fps=30))
    report = loop.run()          # until the source ends, max_frames, quit, stop() or Ctrl+C

Capture runs in its own thread (capture/latest_frame.py) and the loop always takes the newest
frame; frames that arrive while the loop is busy are dropped and counted. With `config.fps` the
loop takes at most that many frames per second, which is also the rate the sinks receive.

Overlap (`config.overlap`, on by default with CUDA): a render worker thread runs generate ->
rasterize -> SR -> sinks for frame t on the renderer's CUDA stream while the main thread tracks
frame t+1 on the CPU. On a CPU the main thread tracks and generates, and the worker rasterizes,
upsamples and sends: the two halves then cost about the same, where tracking alone is a fraction
of the three render stages. The hand-off blocks until the worker is idle, so at most two frames
are in flight and nothing queues up. The preview window is always drawn from the main thread (GUI
toolkits want that); it shows the newest rendered frame and is not part of the timed path.

Timing (runtime/latency.py): per frame, 'capture' (the frame's age when the loop took it),
'track' (landmarks, fit, smoothing, retargeting), 'generate', 'rasterize', 'sr' (CUDA events on
GPU) and 'sink'; end-to-end runs from the capture timestamp to the last sink. The frame's timer
is opened on the main thread and closed by whichever thread finishes the frame.

The latency report (printed once after `report_after_frames` frames, and again whenever asked:
the window's `l` key or `request_report()`) gives the added video latency and the audio delay
to set in the call app: the microphone bypasses splatcam, so without that delay speech leads
the lips by the pipeline's latency.

Shutdown: the source ending, `max_frames`, the window's quit key or close button, `stop()` from
another thread, or Ctrl+C all end the loop the same way: the frame in flight finishes, the
capture thread stops, every sink is closed (a file sink finalises its MP4) and the tracker is
closed. While `run()` runs on the main thread, a first Ctrl+C or SIGTERM only asks the loop to
stop (a signal handler sets the stop flag), so Ctrl+C never lands as an exception inside library
code (MediaPipe, onnxruntime, a sink) halfway through a frame, and SIGTERM does not end the
process with the MP4 unfinished. A second one raises KeyboardInterrupt. A webcam that disappears
is reopened by capture/webcam.py; the loop says once per stall that it is waiting.

Falling behind: when, after warm-up, the loop takes fewer than `BEHIND_FRACTION` of the
frames its source delivers (the rate cap, else the source's rate) over `PACE_WINDOW_S`, and the
inference backend is one that `auto` took from its memory of an earlier run, that memory is
dropped (the load on the machine may have changed since) and the loop says so: the next start
times the backends again. Racing them mid-call would stall the video for as long as they build.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from avatar.gaussians import GaussianSet
from capture.frame import Frame
from capture.latest_frame import LatestFrameGrabber
from capture.frame_source import FrameSource
from runtime.latency import LatencyRecorder, LatencySummary
from runtime.live_config import LiveConfig
from runtime.pipeline import GPU_STAGES, NO_TIMING, AvatarRenderer, LiveDriver
from runtime.sinks.base import Sink
from runtime.sinks.window import QUIT, RECALIBRATE, TOGGLE_OVERLAY, KeyMap
from tracking.driving_frame import DrivingFrame
from tracking.tracker import FrameResult, Tracker

TRACK, SINK = "track", "sink"
REPORT_LATENCY = "report_latency"
AUDIO_DELAY_STEP_MS = 10  # call apps take the delay in steps like this
PACE_WINDOW_S = 10.0  # the loop's frame rate is judged over windows this long ...
BEHIND_FRACTION = 0.9  # ... and is behind its source below this share of the target rate


def live_keymap() -> KeyMap:
    """The window's keys: c recalibrate, o overlay, l latency report, q / Esc quit."""
    bindings = dict(KeyMap().bindings)
    bindings[ord("l")] = bindings[ord("L")] = REPORT_LATENCY
    return KeyMap(bindings)


def audio_delay_ms(summary: LatencySummary) -> int:
    """The audio delay that lines speech up with the lips: the median added video latency."""
    step = AUDIO_DELAY_STEP_MS
    return int(round(summary.end_to_end_ms.p50 / step) * step)


def format_latency_report(summary: LatencySummary) -> str:
    e2e = summary.end_to_end_ms
    stages = ", ".join(f"{name} {p.p50:.1f}" for name, p in summary.stages_ms.items())
    return (f"latency over the last {summary.frames} frames: capture to output p50 {e2e.p50:.0f} ms, "
            f"p95 {e2e.p95:.0f} ms, p99 {e2e.p99:.0f} ms at {summary.fps:.1f} fps "
            f"({summary.dropped} camera frames dropped; stage p50 ms: {stages}).\n"
            f"The microphone bypasses splatcam: delay it by {audio_delay_ms(summary)} ms so lips stay in sync "
            f"(the call app's audio delay setting, or OBS: Advanced Audio Properties, microphone Sync Offset).")


@dataclass
class LiveReport:
    frames: int  # frames rendered and sent (warm-up included)
    captured: int  # frames the source delivered
    dropped: int  # frames replaced by newer ones before the loop took them
    interrupted: bool  # ended by Ctrl+C or SIGTERM
    summary: LatencySummary | None  # timed frames (after warm-up); None if none were timed
    tracked: int = 0  # frames with a usable face
    lost: int = 0  # frames without one
    stop_signal: str | None = None  # "Ctrl+C" or "SIGTERM" when one of them ended the loop


@dataclass
class _Job:
    """One frame on its way from the tracker to the sinks."""

    frame: Frame
    result: FrameResult
    drive: DrivingFrame
    timing: object  # FrameTiming, or NO_TIMING during warm-up
    timer: contextlib.ExitStack  # closes the frame's LatencyRecorder.frame() context
    gaussians: GaussianSet | None = None  # already generated (split overlap), else the worker generates


class _RateLimiter:
    """At most `fps` frames per second: `wait` until the next frame is due, `taken` after one."""

    def __init__(self, fps: float | None) -> None:
        self.period = None if fps is None else 1.0 / fps
        self._due: float | None = None

    def wait(self, stop: threading.Event) -> None:
        if self._due is not None:
            delay = self._due - time.perf_counter()
            if delay > 0:
                stop.wait(delay)

    def taken(self) -> None:
        if self.period is None:
            return
        now = time.perf_counter()
        # Keep the cadence; a loop that fell a whole period behind starts over from now.
        late = self._due is None or now > self._due + self.period
        self._due = (now if late else self._due) + self.period


class _RenderWorker:
    """Runs jobs one at a time in a thread; `submit` waits until the previous job is done."""

    def __init__(self, run: Callable[[_Job], None]) -> None:
        self._run_job = run
        self._idle = threading.Semaphore(1)
        self._ready = threading.Event()
        self._job: _Job | None = None
        self._closing = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="splatcam-render", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            job, self._job = self._job, None
            if job is None:
                if self._closing:
                    return
                continue
            try:
                self._run_job(job)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                self.error = e
            finally:
                self._idle.release()

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def wait_idle(self) -> None:
        """Wait for the job in flight; re-raise its error if it had one."""
        # Short timeouts so Ctrl+C reaches the main thread while it waits.
        while not self._idle.acquire(timeout=0.1):
            pass
        self._idle.release()
        self._raise()

    def submit(self, job: _Job) -> None:
        while not self._idle.acquire(timeout=0.1):
            pass
        try:
            self._raise()
        except BaseException:
            self._idle.release()
            job.timer.close()
            raise
        self._job = job
        self._ready.set()

    def close(self) -> None:
        """Finish the job in flight, stop the thread, re-raise its error if it had one."""
        while not self._idle.acquire(timeout=0.1):
            pass
        self._closing = True
        self._ready.set()
        self._thread.join()
        self._raise()


class LiveLoop:
    def __init__(self, source: FrameSource, tracker: Tracker, driver: LiveDriver, renderer: AvatarRenderer,
                 sinks: list[Sink] = (), window=None, config: LiveConfig = LiveConfig(),
                 overlay=None, log: Callable[[str], None] | None = None,
                 on_frame: Callable[[Frame, FrameResult, DrivingFrame], None] | None = None,
                 owns_tracker: bool = True) -> None:
        """`tracker`: a tracking.tracker.Tracker (LiveTracker, or ProceduralTracker);
        `window`: a WindowSink or None; `overlay`: makes, on demand, a callable (rgb, tracked frame,
        valid) -> rgb for the window's overlay (None: no overlay); `on_frame`: called on the main
        thread with each frame's tracking result and the coefficients sent to the avatar.
        `run()` closes the source, the sinks, the window and (if it owns it) the tracker."""
        self.source, self.tracker, self.driver, self.renderer = source, tracker, driver, renderer
        self.sinks, self.window, self.config = list(sinks), window, config
        self._overlay_factory = overlay
        self._overlay = None
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.on_frame = on_frame
        self.owns_tracker = owns_tracker
        cuda = renderer.device.type == "cuda"
        self.overlap = cuda if config.overlap is None else config.overlap
        # On a CPU the two threads share the cores: tracking alone is much lighter than the three
        # render stages, so the main thread also generates and the worker rasterizes and upsamples.
        self.split_generate = self.overlap and not cuda
        self.recorder = LatencyRecorder(cuda_stages=GPU_STAGES if cuda else (), window=config.latency_window)
        self._timing_lock = threading.Lock()  # the recorder is written by the worker, read by reports
        self._stop = threading.Event()
        self._stop_signal: str | None = None  # the first Ctrl+C or SIGTERM (see _on_signal)
        self._report_requested = threading.Event()
        self._preview_lock = threading.Lock()
        self._preview: tuple[Frame, FrameResult, np.ndarray] | None = None
        self._identity_ready = tracker.identity_ready
        self.frames = self.tracked = self.lost = 0  # frames taken from the capture thread
        self.sent = 0  # frames rendered and handed to every sink
        self._dropped_at_warmup = 0
        self._grabber: LatestFrameGrabber | None = None
        self._reported = False
        self._stall_logged: float | None = None  # the stall already announced
        self._target_fps = config.fps or source.fps
        self._pace_window: tuple[float, int] | None = None  # (start time, frames taken by then)

    # ------------------------------------------------------------ control from other threads

    def stop(self) -> None:
        """End the loop after the frame in flight (any thread)."""
        self._stop.set()

    def request_report(self) -> None:
        """Print the latency report after the next frame (any thread)."""
        self._report_requested.set()

    # ------------------------------------------------------------ the loop

    def run(self) -> LiveReport:
        config = self.config
        limiter = _RateLimiter(config.fps)
        grabber = self._grabber = LatestFrameGrabber(self.source)
        worker = None
        stalled_since: float | None = None
        previous_handlers = self._catch_signals()
        try:
            grabber.start()
            worker = _RenderWorker(self._finish) if self.overlap else None
            while not self._stop.is_set() and (config.max_frames is None or self.frames < config.max_frames):
                self._poll_window()
                if self._stop.is_set():
                    break
                limiter.wait(self._stop)
                frame = grabber.get(timeout=0.1)
                if frame is None:
                    if grabber.ended:
                        break
                    stalled_since = self._note_stall(stalled_since)
                    continue
                if stalled_since is not None and time.perf_counter() - stalled_since >= config.stall_notice_s:
                    self.log(f"{self.source.name}: frames are coming again")
                stalled_since = None
                limiter.taken()
                job = self._track(frame)
                if worker is not None:
                    worker.submit(job)
                else:
                    self._finish(job)
                self.frames += 1
                self._after_frame()
            if worker is not None:
                worker.wait_idle()
        except KeyboardInterrupt:
            self._stop_signal = self._stop_signal or "Ctrl+C"
        finally:
            try:
                self._shutdown(grabber, worker)
            finally:
                for signum, handler in previous_handlers.items():
                    signal.signal(signum, handler)
        return LiveReport(frames=self.sent, captured=grabber.captured, dropped=grabber.dropped,
                          interrupted=self._stop_signal is not None, summary=self._summary(),
                          tracked=self.tracked, lost=self.lost, stop_signal=self._stop_signal)

    def _catch_signals(self) -> dict:
        """Route SIGINT and SIGTERM to `_on_signal` while the loop runs on the main thread (the
        only thread Python runs signal handlers on); returns the handlers to put back. A signal
        that is ignored (a background job's SIGINT) or not Python's to handle stays as it is."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler is not None and handler is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum, frame) -> None:
        # No printing here: the handler may run in the middle of a write to the same stream.
        if self._stop_signal is not None:
            raise KeyboardInterrupt
        self._stop_signal = "Ctrl+C" if signum == signal.SIGINT else "SIGTERM"
        self._stop.set()

    def _note_stall(self, since: float | None) -> float:
        now = time.perf_counter()
        if since is None:
            return now
        if now - since >= self.config.stall_notice_s and self._stall_logged != since:
            self._stall_logged = since
            self.log(f"{self.source.name}: no frame for {now - since:.0f} s; waiting for it to come back "
                     "(Ctrl+C quits)")
        return since

    def _track(self, frame: Frame) -> _Job:
        """Track and drive the frame; with the split overlap also generate its Gaussians."""
        timer = contextlib.ExitStack()
        if self.frames >= self.config.warmup_frames:
            if self.frames == self.config.warmup_frames:
                self._dropped_at_warmup = self._grabber.dropped
            timing = timer.enter_context(self.recorder.frame(frame.timestamp))
        else:
            timing = NO_TIMING
        try:
            with timing.stage(TRACK):
                result = self.tracker.process(frame.rgb, frame.timestamp)
                self._check_identity()
                drive = self.driver(result, frame.timestamp)
            gaussians = self.renderer.generate(drive, timing) if self.split_generate else None
        except BaseException:
            timer.__exit__(*sys.exc_info())
            raise
        if result.valid:
            self.tracked += 1
        else:
            self.lost += 1
        if self.on_frame is not None:
            self.on_frame(frame, result, drive)
        return _Job(frame, result, drive, timing, timer, gaussians)

    def _check_identity(self) -> None:
        """Once the tracker has fitted the driver's identity its coefficients shift: calibrate again."""
        ready = self.tracker.identity_ready
        if ready and not self._identity_ready:
            self.driver.recalibrate()
            self._overlay = None  # drawn with the old identity
        self._identity_ready = ready

    def _finish(self, job: _Job) -> None:
        """Render, send to the sinks, close the frame's timer (main thread or render worker)."""
        try:
            if job.gaussians is None:
                rgb = self.renderer.render(job.drive, job.timing)
            else:
                rgb = self.renderer.finish(job.gaussians, job.timing)
            with job.timing.stage(SINK):
                for sink in self.sinks:
                    sink.send(rgb)
            self.sent += 1
        except BaseException:
            job.timer.__exit__(*sys.exc_info())
            raise
        with self._timing_lock:
            job.timer.close()
        if self.window is not None:
            with self._preview_lock:
                self._preview = (job.frame, job.result, rgb)

    def _after_frame(self) -> None:
        self._show_preview()
        self._check_pace()
        timed = self.recorder.frames
        due = (self.config.report_after_frames and not self._reported
               and timed >= self.config.report_after_frames)
        if due or self._report_requested.is_set():
            self._reported = self._reported or bool(due)
            self._report_requested.clear()
            summary = self._summary()
            self.log(format_latency_report(summary) if summary else "latency: no frame timed yet")

    def _check_pace(self) -> None:
        """Behind the source with a remembered `auto` pick: forget it (module docstring)."""
        forget = self.renderer.backend.forget_choice
        if forget is None or not self._target_fps or self.frames <= self.config.warmup_frames:
            return
        now = time.perf_counter()
        if self._pace_window is None:
            self._pace_window = (now, self.frames)
            return
        start, frames = self._pace_window
        if now - start < PACE_WINDOW_S:
            return
        self._pace_window = (now, self.frames)
        fps = (self.frames - frames) / (now - start)
        if fps >= BEHIND_FRACTION * self._target_fps:
            return
        forget()
        self.renderer.backend.forget_choice = None
        self.log(f"the loop runs at {fps:.1f} fps, behind its source's {self._target_fps:g}, with the inference "
                 f"backend {self.renderer.backend.name} that auto picked on an earlier run; the next start times "
                 "the backends again (or choose one with --backend)")

    def _summary(self, last: int | None = None) -> LatencySummary | None:
        with self._timing_lock:
            if self.recorder.frames == 0:
                return None
            self.recorder.dropped = self._grabber.dropped - self._dropped_at_warmup
            return self.recorder.summary(last)

    def timed_frames(self) -> int:
        """Frames timed so far (after warm-up), all of them, not only those the window keeps."""
        with self._timing_lock:
            return self.recorder.recorded

    def latency_of_last(self, frames: int) -> LatencySummary | None:
        """The latency summary of the last `frames` timed frames (any thread); None before the first."""
        return self._summary(frames)

    # ------------------------------------------------------------ the preview window

    def _poll_window(self) -> None:
        if self.window is None:
            return
        for action in self.window.poll():
            if action == QUIT:
                self._stop.set()
            elif action == RECALIBRATE:
                self.driver.recalibrate()
                self.log("recalibrating: hold a neutral face for a second")
            elif action == TOGGLE_OVERLAY and self._overlay_factory is not None:
                self._overlay = None if self._overlay is not None else self._overlay_factory()
            elif action == REPORT_LATENCY:
                self._report_requested.set()

    def _show_preview(self) -> None:
        if self.window is None:
            return
        with self._preview_lock:
            preview, self._preview = self._preview, None
        if preview is None:
            return
        frame, result, rgb = preview
        if self._overlay is not None and result.frame is not None:
            rgb = side_by_side(self._overlay(frame.rgb, result.frame, result.valid), rgb)
        self.window.send(rgb)

    # ------------------------------------------------------------ shutdown

    def _shutdown(self, grabber: LatestFrameGrabber, worker: _RenderWorker | None) -> None:
        """Stop everything, close every sink even if one fails; re-raise the first error."""
        errors: list[BaseException] = []

        def attempt(action: Callable[[], None]) -> None:
            try:
                action()
            except BaseException as e:  # noqa: BLE001 - collect, then re-raise the first
                errors.append(e)

        if worker is not None:
            attempt(worker.close)
        attempt(grabber.stop)
        for sink in self.sinks:
            attempt(sink.close)
        if self.window is not None:
            attempt(self.window.close)
        if self.owns_tracker:
            attempt(self.tracker.close)
        for error in errors:
            if not isinstance(error, KeyboardInterrupt):
                raise error


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """`left` scaled to `right`'s height, then both in one image."""
    import cv2

    h = right.shape[0]
    w = max(1, round(left.shape[1] * h / left.shape[0]))
    return np.concatenate([cv2.resize(left, (w, h), interpolation=cv2.INTER_AREA), right], axis=1)
