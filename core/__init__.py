"""The bottom layer, below capture/, tracking/, avatar/, export/ and runtime/: rotations, cache
paths, atomic writes, the user-facing error type and logging. It imports nothing of splatcam."""
