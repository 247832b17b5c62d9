"""Tools for working on flux-review (run as `python scripts/NAME.py`)."""
