"""Rolling updates: hosts in batches (``--serial``), and when to stop starting new ones (``--max-fail``).

Pure: the runner asks ``batches`` how to cut the host list and ``halted``
after each batch whether the rollout goes on.

The default for a real run on more than one host is ``DEFAULT_SERIAL``
(a quarter of the hosts at a time, at least one) with ``--max-fail 0``: a
change that breaks mail -- a restart that fails, a verify that fails -- stops
at the first batch, and three quarters of an MX fleet keep serving while a
batch restarts. A dry run changes nothing and stays fully parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")

# What counts against --max-fail.
FAILED_STATUSES = ("failed", "unreachable", "interrupted")


@dataclass(frozen=True)
class Serial:
    """A batch size: ``count`` hosts, or ``percent`` of the hosts (rounded up, at least one)."""

    count: int | None = None
    percent: int | None = None

    def size(self, hosts: int) -> int:
        if self.percent is not None:
            return max(1, math.ceil(hosts * self.percent / 100))
        return max(1, self.count or 1)

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.count)


ALL_AT_ONCE = Serial(percent=100)
DEFAULT_SERIAL = Serial(percent=25)
DEFAULT_MAX_FAIL = 0


def rollout(dry_run: bool, hosts: int, serial: Serial | None, max_fail: int | None) -> tuple[Serial, int | None]:
    """The batch size and failure allowance a run uses (what the options leave open, the defaults decide)."""
    if serial is None:
        serial = ALL_AT_ONCE if dry_run or hosts <= 1 else DEFAULT_SERIAL
    if max_fail is None and serial != ALL_AT_ONCE:
        max_fail = DEFAULT_MAX_FAIL
    return serial, max_fail


def batches(items: Sequence[T], serial: Serial) -> list[list[T]]:
    """``items`` cut into consecutive batches of ``serial.size(len(items))``, in order."""
    size = serial.size(len(items))
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def halted(failures: int, max_fail: int | None) -> bool:
    """After a batch: more hosts failed than the allowance, so no later batch starts."""
    return max_fail is not None and failures > max_fail
