"""Interrupts, as the hosts' runs see them: stop (start nothing new, roll back) or abort (stop waiting).

The CLI turns the first SIGINT or SIGTERM into ``request_stop``: no host
starts and no step applies after it; a step already running finishes, then
that host's run is rolled back. A second signal is ``abort``: runs stop
waiting on their host at once and close the connection, whose holder then
stops the running step and rolls the run back on the host.
"""

from __future__ import annotations

import threading


class Interrupted(Exception):
    """The run was asked to stop before this point (nothing more is applied)."""

    outcome = "interrupted"  # a step that meets it did not run


class Aborted(Exception):
    """The run was asked to stop waiting on the host."""


class RunControl:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stop_reason: str | None = None
        self.abort_reason: str | None = None

    def request_stop(self, why: str) -> None:
        with self._lock:
            self.stop_reason = self.stop_reason or why

    def abort(self, why: str) -> None:
        with self._lock:
            self.stop_reason = self.stop_reason or why
            self.abort_reason = self.abort_reason or why

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    def check(self, where: str) -> None:
        """Raise Interrupted if a stop was requested (call before anything new starts)."""
        if self.stop_reason is not None:
            raise Interrupted(f"interrupted by {self.stop_reason} before {where}")

    def give_up(self) -> Exception | None:
        if self.abort_reason is not None:
            return Aborted(f"aborted by a second {self.abort_reason}")
        return None
