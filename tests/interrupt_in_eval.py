"""Run as `python -m tests.interrupt_in_eval` from the repo root: `splatcam track`
interrupted while inside an eval'd string, as when SIGTERM lands in the namedtuple MediaPipe's face
mesh evals each frame. The command catches it and returns 130, which must be the exit code."""
import sys

import runtime.commands.track as track
from runtime import cli


def _run(args) -> int:
    try:
        eval("(_ for _ in ()).throw(KeyboardInterrupt)")
    except KeyboardInterrupt:
        return 130
    raise AssertionError("the eval'd string did not raise")


track.run = _run
sys.exit(cli.main(["track", "unused.mp4", "--out", "unused.npz"]))
