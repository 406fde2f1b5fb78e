"""The live loop, inference backends, sinks, latency statistics and the command line."""
