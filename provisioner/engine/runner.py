"""Every host in parallel, at most ``forks`` at a time, batch after batch; a failure, or an interrupt, stays with its host.

The per-host run is ``hostrun.HostRun``; how hosts are cut into batches,
and when a rolling update stops, is ``batches``. What happens is told to
the caller as ``Event``s (the report renders them). Workers are daemon threads, so that
an aborted run (a second Ctrl-C) prints its report and exits without
waiting on a host that will not answer: that host's holder rolls it back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from provisioner.engine.batches import FAILED_STATUSES, Serial, batches, halted, rollout
from provisioner.engine.control import RunControl
from provisioner.engine.hostrun import HostRun, StepFailed  # noqa: F401 - StepFailed is part of the engine's API
from provisioner.engine.results import (  # noqa: F401 - the engine's results, for the report
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PENDING,
    ChangeRecord,
    HostReport,
    RollbackRecord,
    EXIT_HALTED,
    Event,
    RunReport,
    StepRecord,
    VerifyDecision,
)
from provisioner.inventory import Host
from provisioner.model import Facts
from provisioner.platforms import Platform
from provisioner.transport import HostConnection

# After an abort: how long hosts get to notice it (they stop waiting within milliseconds,
# but a verify in progress finishes its SMTP session first).
ABORT_GRACE = 5.0
# Hosts handled at once (docs/usage.md, "Many hosts"): a host's run mostly waits on the network and on the
# host, so threads overlap those waits; 64 covers a 50-host fleet in one wave on a 2-core control node.
DEFAULT_FORKS = 64


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    verify: str = "auto"  # auto | always | never (provisioner/engine/verified.py)
    forks: int = DEFAULT_FORKS
    serial: Serial | None = None  # None: batches.rollout() decides
    max_fail: int | None = None


Verifier = Callable[[Host, HostConnection, Facts, Platform], object]


def run(
    hosts: list[Host],
    options: RunOptions,
    verifier: Verifier | None = None,
    events: Callable[[Event], None] = lambda event: None,
    control: RunControl | None = None,
    verify_scope: Callable[[Host], Mapping[str, Any]] | None = None,
) -> RunReport:
    """Provision (or plan) every host, batch after batch; one host's failure never stops the others of its batch."""
    control = control or RunControl()
    runs = [
        HostRun(host, options.dry_run, options.verify != "never" and host.vars.verify and verifier is not None,
                verifier, events, control, verify_mode=options.verify, verify_scope=verify_scope)
        for host in hosts
    ]
    serial, max_fail = rollout(options.dry_run, len(runs), options.serial, options.max_fail)
    groups = batches(runs, serial)
    rolling = len(groups) > 1
    for number, group in enumerate(groups, 1):
        for host_run in group:
            host_run.report.batch = number if rolling else 0
            events(Event(host_run.host.name, "queued", batch=host_run.report.batch))
    failures, halted_by = 0, None
    for number, group in enumerate(groups, 1):
        if halted_by is not None:
            for host_run in group:
                host_run.not_run(halted_by)
            continue
        if control.abort_reason is not None or control.stopping:
            for host_run in group:
                host_run.run()  # reports "interrupted: not started" without connecting
            continue
        _run_batch(group, options.forks, control)
        failures += sum(1 for r in group if r.report.status in FAILED_STATUSES)
        if number < len(groups) and halted(failures, max_fail):
            halted_by = (f"{failures} host(s) failed in batch {number} of {len(groups)} or before, more than "
                         f"--max-fail {max_fail} allows: later batches did not start")
    return RunReport(dry_run=options.dry_run, hosts={r.host.name: r.report for r in runs},
                     interrupted=control.stop_reason, halted=halted_by,
                     serial=str(serial) if rolling else None, max_fail=max_fail if rolling else None)


def _run_batch(group: list[HostRun], forks: int, control: RunControl) -> None:
    """Every host of one batch in parallel, at most ``forks`` at a time."""
    slots = threading.BoundedSemaphore(max(1, forks))
    escaped: list[BaseException] = []  # what a host's run did not handle is the caller's (as with a thread pool)

    def work(host_run: HostRun) -> None:
        with slots:
            try:
                host_run.run()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
                escaped.append(exc)

    threads = [threading.Thread(target=work, args=(r,), name=f"host-{r.host.name}", daemon=True) for r in group]
    for thread in threads:
        thread.start()
    aborted_at: float | None = None
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.1)
        if control.abort_reason is not None:
            aborted_at = aborted_at or time.monotonic()
            if time.monotonic() - aborted_at > ABORT_GRACE:
                break
    if escaped:
        raise escaped[0]
    for host_run in group:
        if not host_run.finished:
            host_run.abandon(control.abort_reason)
