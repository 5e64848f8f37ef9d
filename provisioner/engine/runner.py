"""Every host in parallel, at most ``forks`` at a time; a failure, or an interrupt, stays with its host.

The per-host run is ``hostrun.HostRun``. Workers are daemon threads, so that
an aborted run (a second Ctrl-C) prints its report and exits without
waiting on a host that will not answer: that host's holder rolls it back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

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


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    verify: str = "auto"  # auto | always | never (provisioner/engine/verified.py)
    forks: int = 5


Verifier = Callable[[Host, HostConnection, Facts, Platform], object]


def run(
    hosts: list[Host],
    options: RunOptions,
    verifier: Verifier | None = None,
    log: Callable[[str, str], None] = lambda host, message: None,
    control: RunControl | None = None,
    verify_scope: Callable[[Host], Mapping[str, Any]] | None = None,
) -> RunReport:
    """Provision (or plan) every host in parallel; one host's failure never stops the others."""
    control = control or RunControl()
    runs = [
        HostRun(host, options.dry_run, options.verify != "never" and host.vars.verify and verifier is not None,
                verifier, log, control, verify_mode=options.verify, verify_scope=verify_scope)
        for host in hosts
    ]
    slots = threading.BoundedSemaphore(max(1, options.forks))
    escaped: list[BaseException] = []  # what a host's run did not handle is the caller's (as with a thread pool)

    def work(host_run: HostRun) -> None:
        with slots:
            try:
                host_run.run()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
                escaped.append(exc)

    threads = [threading.Thread(target=work, args=(r,), name=f"host-{r.host.name}", daemon=True) for r in runs]
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
    for host_run in runs:
        if not host_run.finished:
            report = host_run.report
            report.status = "interrupted"
            report.error = (f"aborted by a second {control.abort_reason} while the host was still busy"
                            + ("; the host rolls this run back on its own" if host_run.applied else ""))
            if host_run.applied:
                report.rollback = RollbackRecord("by-host")
    return RunReport(dry_run=options.dry_run, hosts={r.host.name: r.report for r in runs},
                     interrupted=control.stop_reason)
