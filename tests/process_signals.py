"""Send a real signal to a command running in its own process, midway through its work."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def signal_midway(cmd: list[str], ready: str, signum: int, delay_s: float = 1.0,
                  timeout_s: float = 60.0) -> tuple[int, str]:
    """Run `cmd` in the repo, wait until its stderr has shown `ready`, then `delay_s` more, send
    `signum`; returns (exit code, all of stderr). The child gets SIGINT at its default, as under a
    terminal (a non-interactive shell's background jobs inherit it ignored)."""
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = ""
    try:
        while ready not in seen:
            chunk = proc.stderr.read(64)
            if not chunk:
                raise AssertionError(f"{cmd[2:4]} ended before showing {ready!r}:\n{seen}")
            seen += chunk
        time.sleep(delay_s)
        proc.send_signal(signum)
        _, rest = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, seen + rest
