"""The error type for "this input or this machine can't do that", as opposed to a bug."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or setup; the CLI prints it as one line and exits with 2."""
