"""One module per `splatcam` subcommand; runtime.cli discovers them.

Each module defines `register(subparsers)`, which adds its parser and sets `func` to a
callable taking the parsed arguments and returning an exit code. Heavy imports belong inside
that callable so `splatcam --help` stays fast.
"""
