"""tracking/native_log.py: native writes to fd 2 are hushed inside, kept outside, and restored."""
from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import os
from tracking.native_log import quiet_native_stderr
os.write(2, b"before\\n")
with quiet_native_stderr():
    os.write(2, b"hidden\\n")
os.write(2, b"after\\n")
"""


def run(env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    env.pop("SPLATCAM_VERBOSE", None) if not env_extra else None
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), check=True).stderr


def test_native_stderr_is_hushed_only_inside():
    assert run() == "before\nafter\n"


def test_verbose_shows_everything():
    assert run({"SPLATCAM_VERBOSE": "1"}) == "before\nhidden\nafter\n"
