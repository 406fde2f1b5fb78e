"""2D landmark detectors behind one interface (see base.py)."""
