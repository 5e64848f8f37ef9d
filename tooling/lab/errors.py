"""The one exception type the lab raises."""

from __future__ import annotations


class LabError(RuntimeError):
    """Anything that keeps the lab from coming up or going down cleanly.

    The message is meant for a person: it says what failed and, where there is
    one, what to do about it (``run make bootstrap``, ``run as root``, the tail
    of a boot log, ...).
    """
