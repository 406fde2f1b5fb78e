"""Frame sources. Every frame carries its capture timestamp."""
