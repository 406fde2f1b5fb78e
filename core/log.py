"""Logging for library code: modules log through `logging.getLogger(__name__)` and never print;
only commands print their results. The CLI calls `configure` once per run (-v / -q)."""
from __future__ import annotations

import logging
import sys

QUIET, NORMAL, VERBOSE = -1, 0, 1
PACKAGES = ("core", "capture", "tracking", "avatar", "export", "runtime")  # splatcam's loggers' roots
_LEVELS = {QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each record (tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(verbosity: int = NORMAL) -> None:
    """Messages of splatcam's loggers to stderr as "splatcam: message" (debug lines also name their
    module): warnings and errors only with QUIET, progress notes too by default, DEBUG with VERBOSE."""
    level = _LEVELS[max(QUIET, min(VERBOSE, verbosity))]
    handler = _StderrHandler()
    fmt = "splatcam %(name)s: %(message)s" if level == logging.DEBUG else "splatcam: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    for name in PACKAGES:  # not the root logger: other libraries' notes stay out
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
