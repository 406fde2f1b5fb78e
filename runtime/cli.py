"""`splatcam`: the command-line interface. Subcommands live in runtime/commands/, one per module."""
from __future__ import annotations

import os

# Idle OpenMP workers sleep instead of spinning: the live loop runs capture, tracking and
# rendering side by side, and spinning torch threads starve the others on a small CPU.
# It must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib  # noqa: E402
import pkgutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

import runtime.commands  # noqa: E402
from core import log  # noqa: E402
from core.errors import UserError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="splatcam", description="Real-time Gaussian head avatars: track, train, render, go live.")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=log.VERBOSE,
                          default=log.NORMAL, help="also show debug messages")
    loudness.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=log.QUIET,
                          help="show only warnings and errors from the library (results still print)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(runtime.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"runtime.commands.{info.name}")
        module.register(sub)
    return parser


def expected_errors() -> tuple[type[BaseException], ...]:
    """Failures that mean "this input or this machine can't do that", not a bug in splatcam."""
    from capture.frame_source import CaptureError
    from tracking.landmarks.base import BackendUnavailable

    return UserError, FileNotFoundError, NotADirectoryError, ValueError, CaptureError, BackendUnavailable


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _sigterm_as_ctrl_c():
    """SIGTERM (a scheduler, `timeout`, `docker stop`) takes the Ctrl+C path of every command:
    training saves a checkpoint, partial outputs are finalised or removed. Returns the handler to
    put back, or None when SIGTERM is not ours to change (not the main thread, or already set)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


def _forget_caught_interrupts() -> None:
    """CPython (3.11 here) remembers a KeyboardInterrupt that escaped any eval'd string, even one a
    caller caught later, and under `python -m` then ends the process by SIGINT instead of with our
    exit code. MediaPipe's face mesh evals a namedtuple every frame, so Ctrl+C or SIGTERM lands
    there now and then. A clean eval clears that memory."""
    exec("pass")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log.configure(args.verbosity)
    previous_sigterm = _sigterm_as_ctrl_c()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("splatcam: interrupted", file=sys.stderr)
        return 130
    except expected_errors() as e:
        # Expected failures (bad files, wrong shapes, missing assets) get one line, not a traceback.
        print(f"splatcam {args.command}: error: {e}", file=sys.stderr)
        return 2
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        _forget_caught_interrupts()


if __name__ == "__main__":
    sys.exit(main())
