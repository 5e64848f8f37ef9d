"""Loaded at interpreter start-up when tests/guard is on PYTHONPATH: see noconnect.py."""

import os

if os.environ.get("NOCONNECT_RECORD"):
    import noconnect

    noconnect.install_hard(os.environ["NOCONNECT_RECORD"])
