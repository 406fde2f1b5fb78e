"""The live entry point: webcam -> avatar -> virtual camera. The same as `splatcam live`.

    python run_live.py [--avatar DIR|demo] [--camera N | --video FILE] [--virtual-camera] [--window] ...

Every option is `splatcam live`'s (runtime/commands/live.py); `python run_live.py --help` lists them.
"""
import sys

from runtime.cli import main

if __name__ == "__main__":
    sys.exit(main(["live", *sys.argv[1:]]))
